"""Where the search time goes: cProfile of `planner.solve` on the slowest questions of issue 14.

    python benchmarks/speed_profile.py [--lines 25]

Writes benchmarks/speed_profile.md: per scenario, the functions by cumulative time (in-process,
after a warm-up that imports everything, layouts recomputed, one thread), so a change can be aimed
at what costs the most.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import time
from pathlib import Path

from planner import load_scenario, solve
from planner.search import solver
from planner.search.solver import _LAYOUT_CACHE

HERE = Path(__file__).resolve().parent
SCENARIOS = [HERE.parent / "scenarios" / "405b_16k.yaml", HERE / "scenarios" / "dsv3_2048_h800.yaml",
             HERE / "scenarios" / "dsv3_131k_h100_range.yaml"]


FINDINGS = """Where the time went before issue 14 (DeepSeek-V3 on 2,048 H800, 9.4 s whole process on this machine
while idle-ish): building the plan table as the full product of layouts x categorical choices (15.1M
rows, 2 GB) and applying the framework rules to it (2.9 s); memory and time of all 702,768 runnable
plans (2.5 s); CP-SAT enumerating (tp, pp, cp, ep, dp) with a Python callback per solution (0.5 s);
importing OR-Tools (and pandas) at start-up (0.3 s). What replaced it:

- the rules run once per distinct value of the layout columns they read, broadcast against the
  categorical choices (6,554 x 648 instead of 15.1M rows), and only runnable rows are built;
- CP-SAT enumerates (tp, pp, cp) only; dp follows (GPUs / tp pp cp) and ep, mbs, ga, vpp and the
  batch expand by numpy (0.5 s -> 0.015 s; 405B on 16,384 GPUs: 2.0 s -> 0.015 s);
- time is evaluated only for plans an exact bound cannot rule out of the shown places (branch and
  bound on a step-time lower bound, computed once per distinct compute input);
- OR-Tools is imported when a search first needs it; purchase searches skip the memory counts.

Then memory became every pipeline rank's (sum(pp) stage evaluations per plan, not two), and the
memory verdict of every runnable plan (the exact `feasible` count of the contract) took 70-85% of
the search (DeepSeek-V3 on 2,048 H100: 12.8 s CPU whole process; most_loaded_stage alone 18 of 21.5 s
under the profiler). Measured, and what changed:

- evaluating memory once per distinct value of the columns it reads (as the step-time bound does)
  gains nothing for a fixed batch: the plan table holds no two plans equal in those 16 columns
  (1,519,488 distinct of 1,519,488 for DeepSeek-V3 / 2,048 H100), since ga follows from dp and mbs;
  per term (model states, activations) the grouping costs more (np.unique per rank) than it saves;
- middle ranks of equal layer composition differ by their micro-batches in flight, which the
  accumulation never caps in these questions (989,739 distinct of 989,739 rank evaluations): no
  rank can be skipped as a duplicate;
- a plan whose most loaded rank so far is already out of memory (optimistic total above the GPU)
  stays so: its other ranks are skipped in the verdict pass (same fits / feasible counts);
- the rank scan keeps only each rank's total, and the parts of each plan's peak rank come from one
  more evaluation of that rank (no per-key update per rank);
- with several batches, plans that differ only in an accumulation count beyond the micro-batches in
  flight share one memory verdict (9,197,049 -> 5,113,179 evaluations for the 131,072-GPU range).

Then (issue 14, second pass), each change exact (the same JSON for every shipped and benchmark
scenario, byte for byte; tests compare each with the reference path it replaces):

- candidate ranks (planner/estimate/memory_ranks.py): ranks holding the same stage parameters
  differ only by micro-batches in flight, which fall with the rank, so only the lowest and highest
  rank of each such class can hold the peak; plans where a class's highest rank is the larger are
  scanned rank by rank. DeepSeek-V3 on 2,048 H100: 4.9M -> 4.5M rank evaluations (pp is small
  there: most plans have 2-6 candidates either way); `--exhaustive` keeps the every-rank scan;
- stage layers read from a (pp, vpp, rank) table; the verdict pass keeps only what the verdict
  reads while scanning; the timing pass reuses each fitting plan's peak rank from the verdict pass
  (one stage evaluation per plan instead of a scan); memory passes of 65,536 rows (cache-sized:
  15% faster than 262,144 here);
- the step-time lower bound is now the pipeline's step over the full stage time (compute and
  exposed TP/CP/EP/PP communication: evaluate.stage_time), leaving out only DP sync, optimizer and
  offload; on GPUs whose tensor clock drops under load each stage's compute is taken at the burst
  clock and its exposed communication at the lowest clock (the stage time is not monotone in the
  clock). 2,048 plans are timed for DeepSeek-V3 on 2,048 GPUs and ~10,000 for the 131,072-GPU range
  (was ~1M); the bound now costs two stage-time evaluations per distinct input;
- the memory verdict chunks and the bound's stage times are shared by two threads (numpy releases
  the interpreter lock in its array loops): wall time only, on a quiet machine;
- the plan table is stored in the narrowest integer types (T.take widens the rows it returns), and
  plans sharing a memory verdict across batches are found in linear time from the layout-major
  table (each checked against its representative; sorting otherwise): the 131,072-GPU range peaks
  at 0.66 GB instead of 1.8 GB;
- OR-Tools' cp_model is imported without pandas (a placeholder with the two names its signatures
  read): ~0.2-0.35 s less start-up per process.

Then (issue 14, third pass: planner/estimate/memory_tables.py), the memory verdict no longer
evaluates memory per plan and rank. A rank's total is stage_memory's sum of pieces that each read
few columns: model states (with DeepSpeed's buckets, ZeRO-3's live parameters, FSDP's prefetch, the
step temporary, host RAM and NVMe) read the degrees, ZeRO, offload, precision and framework and ga
only as ga > 1; transients (activations, SP and MoE buffers, receive buffers, the largest tensor)
read tp, cp, etp, mbs, ga, vpp, sp, recompute, precision and framework; CUDA, workspaces and NCCL
read the layout. Each is evaluated once per distinct value of its columns ("cell", found by a
recording row) and candidate rank; a plan's cell is arithmetic on the layout-major table (its layout
run and a mixed-radix code of its categorical columns, through small tables; no sort over the
plans), and per plan-rank only gathers and stage_memory's own additions remain, in its order, so
every total is the same bit for bit (tests compare totals, verdicts and peak ranks with the
reference on random tables of six models and on shipped scenarios; the JSON of every shipped and
benchmark scenario is byte for byte the same). DeepSeek-V3 on 2,048 H100: 1,443,060 plans, 5,682,150
plan-ranks, but 527,958 state and 244,602 transient cell-ranks and 11,126 layouts evaluated; where
a plan has no step temporary nor bucket (all but DeepSpeed) a shorter sum gives the same bits. The
verdict pass, one thread, median of 3 on this shared machine (load 6-7): 3.76 -> 1.22 s CPU (H100),
3.38 -> 1.03 s (H800), 0.22 -> 0.12 s (405B on 16,384). Whole process, median of 5 alternated with
the previous commit (load 5-7): DeepSeek-V3 / 2,048 H100 6.88 -> 3.83 s CPU, H800 6.39 -> 3.36 s;
405B 1.74 -> 1.71 s; the 131,072-GPU batch range (median of 3, load 9.5) 38.9 -> 24.1 s CPU, peak
memory 892 -> 885 MB (the cell tables are packed per cell, the plan codes int32). Tried and left: deferring pydantic's schema builds (defer_build) moves the cost
from import to load (0.31-0.41 s import + 0.02 s load before, the same sum after); start-up is
~0.35 s CPU here (numpy 0.12, pydantic and the scenario schema 0.13, CP-SAT 0.08-0.1).

Then (issue 14, fourth pass: the step-time bound, planner/search/bound.py), exact again (the same
JSON for all 19 shipped, benchmark and report scenarios, byte for byte apart from `seconds`):

- the stage time is evaluated once per distinct value of the columns it reads other than ga, at the
  largest ga of the group: it does not grow with ga (FP8 weight casts spread over the step's
  micro-batches, the warm-up share of the EP overlap falls with ga; tests/test_bound.py checks it
  for every plan of varied tables), so its value there is below every member's. A fixed batch has
  one ga per group (the same bound as before); the 131,072-GPU range has 795,144 groups instead of
  2,916,429 distinct inputs, the bound equals the per-ga one for 89% of its plans and is within 1%
  for 99%, and 17,715 plans instead of 17,083 have a bound that reaches the final threshold;
- the groups are found without sorting: the layout columns change only between a layout's runs of
  rows, so they are grouped on the first row of each run, and the rest through a mixed-radix key
  renumbered with dense lookup tables (8.7M rows: 1.8-1.9 s -> 0.5-0.6 s CPU);
- on GPUs whose tensor clock drops under load the search starts from a bound of one stage
  evaluation per group (the lowest clock, its compute times scaled by the sustained fraction: no
  compute term is more than 1/s slower at clock s) and evaluates the two-clock bound only for the
  groups of plans the branch and bound takes (solver.bounded_rows `refine`). DeepSeek-V3 on 2,048
  H100, every runnable plan: bound 1.81 s -> 1.05 s CPU, search 0.29 s -> 0.44 s (10,504 plans timed
  instead of 10,240); the 131,072-GPU range: 5.4 s -> 4.8 s.

Then (issue 14, fifth pass: the search's other parts and start-up, exact again: the same JSON and
tables for all 19 shipped, benchmark and report scenarios, byte for byte apart from `seconds`:
benchmarks/json_digest.py):

- the stage-time bound takes its per-layer units (compute.layer_costs, comm.layer_comm and one EP
  dispatch: evaluate.layer_units) evaluated once per distinct value of the columns they read (all
  the bound's but vpp: 330,549 groups share 86,478 units for DeepSeek-V3 / 2,048 H100), and each
  stage reuses the EP dispatch computed with the units instead of computing it again (also in
  evaluate_table); only the per-stage sums remain per group. search_bound 0.85 -> 0.3 s CPU (H100), 0.77 -> 0.46 s
  (H800, loaded machine); tests/test_bound.py compares the shared units with per-row ones (equal);
- the framework rules run on (distinct layout projection) x (choices of the categorical keys they
  read: recompute is not one, 648 -> 216 choices), and the kept rows are expanded from that table
  (solver._expand; by blocks where the keys the rules do not read come last: solver._kept) instead
  of np.nonzero over layouts x choices (26M cells for DeepSeek-V3 / 2,048): _candidate_rows 0.25 ->
  0.06-0.11 s CPU (layouts cached); tests compare with the full product;
- bounded_rows reads the rows in bound order a block at a time (planner/search/order.py ByBound:
  partition, then a stable sort of the block; the same order as the whole stable argsort): 0.06-0.1
  -> 0.01 s (2,048 GPUs), 0.88 -> 0.08 s (the 131,072-GPU range, 5.7M plans);
- _shared_rows (the 131,072-GPU range) checks only the categorical choices against each plan's
  representative, as one mixed-radix code (the layout columns are equal by the grouping of the
  layout runs): 1.23 -> 0.6-0.8 s CPU, the same groups;
- start-up: rich is imported only when a table is printed, the catalog module imports YAML and the
  spec readers on first use, one catalog entry is parsed from its own text (the whole file where
  its layout might tie entries together: anchors, document markers, duplicate names), the error
  bands are read with libyaml's parser (28 -> 3 ms): `--help` 0.35 -> 0.08 s CPU.

Whole process, the previous commit and this one alternated, best of n (CPU = user + system of the
least-CPU run; a shared 2-core machine, load 4-7): `--help` 0.35 -> 0.08 s CPU (wall 0.70 -> 0.16);
405B / 16,384 0.87 -> 0.79 (wall 1.76 -> 1.58, n=5); DeepSeek-V3 / 2,048 H100 2.64 -> 2.05 (wall
5.30 -> 3.72), H800 2.49 -> 2.04 (wall 3.14 -> 2.28); the 131,072-GPU range 9.99 -> 6.30 (wall
11.41 -> 7.11, peak 871 -> 862 MiB, n=2); `compare scenarios/purchases.yaml --json` 7.11 -> 6.03
(n=2). Again at the last commit (load 2-5, rising): `--help` 0.34 -> 0.07 s CPU (wall 0.46 -> 0.09);
405B 0.89 -> 0.84 (wall 1.44 -> 1.19); DeepSeek-V3 / 2,048 H100 2.57 -> 2.04 (wall 5.16 -> 4.11), H800
3.11 -> 2.50; the range 10.41 -> 8.88 (peak 871 -> 861 MiB); purchases 9.30 -> 6.53. Of DeepSeek-V3 /
2,048 H100's ~2.0 s CPU, the memory verdict is ~1.05, imports ~0.3 (numpy
0.11, pydantic 0.09, the spec schema 0.08), CP-SAT's import and layouts ~0.14, the plan table ~0.1,
the bound 0.3. Tried and left: one gather of the choices as rows of a small table instead of six
column gathers (2 x slower); int32 gather indices (numpy casts them to intp on every gather). The
environment here sets PYTHONDONTWRITEBYTECODE (no .pyc is written): no difference measured within
the noise against compiled modules.

Then (issue 14, sixth pass: the memory verdict, planner/estimate/memory_tables.py, memory_cells.py),
exact again (the same JSON for all 19 shipped, benchmark and report scenarios, byte for byte apart
from `seconds`; tests compare each path with the reference on random tables of six models, with
uneven pipelines and DeepSeek-V3's dense first layers, and on shipped scenarios):

- the verdict between two bounds: a plan fits if it does with each term at its largest over its
  candidate slots (per-cell maxima; combine_stepless only adds and rounding is monotone, so the bound
  is at least every slot's total bit for bit; host RAM / NVMe at their largest too), and is out of
  memory if its rank 0 is; only plans between are scanned rank by rank (DeepSeek-V3 / 2,048 H100:
  48,098 of 1,443,060; H800: 279,010; 405B: 239 of 108,969; the 131,072-GPU range: 243,376 of
  8,749,353). The plans a search prunes no longer get a peak rank here: evaluate_table scans the
  ~10,000 it times (searches that time every plan still take it from the verdict pass);
- with a batch range the cells share the verdicts themselves: activation cells read ga as the
  micro-batches in flight tell it apart (torchtitan's plans keep theirs), states as ga > 1, so the
  plans are no longer grouped first (solver._shared_rows: 1.3-1.4 s CPU on the 131,072-GPU range);
- model states evaluated once per class of ranks (equal at its lowest and highest rank: 411,423 of
  527,958 state slots for DeepSeek-V3 / 2,048), CUDA / workspace / NCCL buffers held with them (one
  cell table less), the per-layer activation bytes once per cell instead of per slot, the level
  re-scan of memory_ranks.level_beyond's plans in one stage_memory call over every (plan, rank)
  pair (memory.every_rank_stage: 4 plans of pp 16-32 took 0.07 s rank by rank);
- cells numbered among the category codes present (87 of 1,152 here), their rows built from a run
  head and a code (no scatter over the plans), computed in blocks of 2^20 plans, category codes in
  int16: the 131,072-GPU range's verdict peaks at 0.81 GB instead of 0.86 GB; the layout columns of
  the runs ranked by presence tables instead of np.unique (its 242,930 runs: 2.35 -> 2.03 s).
The verdict pass, one thread, median of 3 on this shared machine (load ~4): DeepSeek-V3 / 2,048
H100 0.79 -> 0.57 s CPU, H800 0.88 -> 0.73 s, 405B on 16,384 0.20 -> 0.11 s, the 131,072-GPU range
5.07 -> 2.03 s. Measured and left: evaluating the other slots only for cells of plans not out of
memory at rank 0 (a first pass over the plans) saves 16% of the term evaluations here and costs as
much in the extra pass (131,072-GPU range: 2.8 -> 3.3 s). Whole process, best of 5 alternated with
the previous commit (load ~4.3): DeepSeek-V3 / 2,048 H100 3.17 -> 2.86 s CPU, H800 3.31 -> 2.92 s,
405B 1.11 -> 1.14 s (its verdict is 0.1 s: noise); the 131,072-GPU range (best of 3) 8.40 -> 7.59 s
CPU, peak memory 887 -> 859 MB (solve in-process, warm: 8.4 -> 5.6 s CPU).

What remains in the verdict: per plan ~10 gathers and as many additions (bounds and cells) and
per cell-slot the term evaluations (model_state_parts, activation_parts: ~0.4 us each), then the
step-time bound (one stage evaluation per group: 481,008 for DeepSeek-V3 / 2,048 H100, 795,144 for
the 131,072-GPU range, ~2 us each), the plan table and start-up.

Then (issue 14, seventh pass: the memory verdict again, planner/estimate/memory_tables.py,
memory_cells.py, memory_ranks.py), exact (the same JSON for all shipped, benchmark and report
scenarios apart from `seconds`; tests compare each path with the reference on random tables):

- a node of unknown host memory (hgx-h800): memory_verdict finds every plan that offloads out of
  memory whatever its GPU memory, so those plans are not evaluated (480,882 of DeepSeek-V3 / 2,048
  H800's 1,443,060; they were most of its 279,010 plans between the bounds);
- the bounds per plan: each term's bound keys are summed once per slot, the cell keeps the largest
  sum over its slots and rank 0's, and a plan adds its two terms' sums (two gathers and one
  addition instead of seven gathers and combine's additions); the sums are in another order than
  stage_memory's, so the upper one is widened and the lower one narrowed by a relative 1e-12 (a
  dozen additions of non-negative numbers round by less than 2^-53 each); host RAM / NVMe and the
  step temporary folded into the state cells' upper sum;
- plans between the bounds without a step temporary (host RAM fitting at every slot) are judged by
  their exact largest total over their candidate slots (combine_stepless, bit for bit the scan's):
  the class holding the peak has it at its lowest or highest rank, so that total is the peak; only
  the rest takes the rank scan: DeepSeek-V3 / 2,048 H100 48,098 -> 1,548 plans scanned, H800
  279,010 -> 1,170, 405B on 16,384 239 -> 105;
- stage_params (it reads only pp, vpp and the rank) once per (pp, vpp) pair and slot, gathered per
  slot; the candidate slots laid out from one table per pair (memory_ranks.candidate_table: no
  cells x slots rank matrix, no nonzero over it); fixed and FSDP bytes once per state cell; cell
  tables hold only the columns their term reads; per-cell slot maxima by a gather per slot column
  (np.maximum.reduceat took twice as long); sums added in place (no keys x slots temporary).
The verdict pass, one thread, in process, the previous state (7d97e50) and this one alternated, 4 x 3
runs on this shared machine (load 4-6): DeepSeek-V3 / 2,048 H100 0.80 -> 0.53 s CPU (least; median
0.96 -> 0.65), H800 0.71 -> 0.44 (median 0.84 -> 0.53), 405B on 16,384 0.17 -> 0.20 (median 0.24 ->
0.24: its verdict is small, noise). Whole process, alternated, least CPU of 5 (load 4.3-4.6): H100
3.19 -> 2.88 s, H800 2.41 -> 2.03 s, 405B 0.95 -> 0.92 s; the 131,072-GPU range (of 2) 6.66 -> 6.25 s,
peak memory 837 -> 796 MiB. What remains in the verdict (DeepSeek-V3 / 2,048 H100, shares under
the profiler): the term formulas (state_terms, activation_terms) ~34%, gathering their rows, stage
parameters and per-cell inputs per slot ~12%, the plans' cells (memory_cells.Plans.cells: per-plan
key, presence and compaction passes) ~15%, the pass over the plans ~14% (the exact largest total of
the plans between the bounds ~6%, the scan ~3%), the rank classes of each (pp, vpp) pair ~3%.

Then (issue 14, around the search: what a whole process costs beyond planner.solve), exact (the same
JSON for all shipped, benchmark and report scenarios apart from `seconds`; the same tables for three).
Measured on DeepSeek-V3 / 2,048 H100 (load 2-3): importing the CLI and the solver 0.41-0.45 s (the
spec 0.28: pydantic 0.08, its model builds, Plan 5 ms, Scenario 7 ms; numpy 0.08; click 0.03),
CP-SAT's import 0.13 s (its compiled helper 0.11), loading the scenario 0.01 s, the shown plans'
rows, closest / explanation and the JSON text 0.01 s (the rows are read from the search's evaluation), and the
interpreter's exit 0.10-0.22 s: its last garbage collections walk every object still alive
(pydantic's schemas, numpy's and OR-Tools' modules), after the output is written. The CLI now
freezes the collector at exit (gc.freeze, atexit: those objects are still released by reference
counting) and around the search (the modules' and scenario's objects are not walked by the
search's collections, unfrozen after it): exit 0.10-0.22 -> 0.01-0.03 s, collections during the
search 0.06-0.075 -> 0.024-0.048 s. Whole process, the previous commit and this one alternated, best
of 5 (load 2.2-2.7): DeepSeek-V3 / 2,048 H100 wall 2.27 -> 1.88 s, CPU 2.58 -> 2.43; 405B / 16,384
wall 0.96 -> 0.81, CPU 1.13 -> 0.99; scenarios/32b_16gpu.yaml wall 0.90 -> 0.73, CPU 1.02 -> 0.86.
Tried and left: importing CP-SAT in a thread while the spec is imported (dlopen and its module
set-up hold the interpreter lock: the same wall, n=5); disabling or raising the collector's
thresholds during imports (2 ms of collections there); pydantic's plugin scan (4 ms); deferring
Plan's schema (5 ms, and scenarios with `search.fixed` validate it anyway); freezing around
`compare` (its collections are 0.08 of 6.5 s). Not the project's: this machine's interpreter runs a
certifi .pth at start-up (0.07 s of `site`), which a clean install does not.
"""


LATER = """Then (issue 14: the batch range's bound and plan table, and start-up imports), exact (the same JSON
for all shipped, benchmark and report scenarios apart from `seconds`; tests compare each path with
the one it replaces). In-process on the 131,072-GPU range's 5,739,111 fitting plans, CPU medians of
5-7 alternated runs on this shared machine (load 5-8):

- bound.stage_groups: each row's key is its run's group (np.repeat over the runs, not a cumsum and an
  int32 gather, which numpy converts to intp on every call) plus one int16 code of the columns that
  change within runs (their values as digits, as _dense_groups numbers them: the same groups);
  changes of the run columns OR-ed in place; _dense_ids numbers only the keys present where the span
  is over 4 x the keys (the 365,300 run heads' groups 0.063 -> 0.031 s): 0.52 -> 0.27 s;
- bound.group_max by np.maximum.at (numpy >= 1.25 runs it unbuffered): 0.09 -> 0.02 s;
- order.ByBound's first block reads the bounds in place (no gather of every row through an index of
  all rows) and partitions one negated copy in place: 5.7M rows read to 108k: 0.24 -> 0.16 s;
- the plan table (solver._candidate_rows): where the keys the rules do not read come last
  (recompute, m = 3 choices), rows are expanded per block of m (one sub-choice per block: _expand and
  the categorical gathers on a third of the rows, then np.repeat / np.tile), _expand indexes with
  intp, T.compact keeps an array already that narrow: 0.29 -> 0.22 s (layouts cached);
  bound_order's tokens in int64 without widened copies: 0.094 -> 0.064 s.
Start-up: numpy 2's plain np.unique imports numpy.ma (to check for a masked array: 10-40 ms of every
solve); table.distinct asks with return_index (the same values) and a solve no longer imports it;
`planner compare` imported OR-Tools' cp_model directly (purchase_mix) and with it pandas: it now
goes through planner.search.cpsat (tests/test_cpsat_import.py checks both). planner.solve
in-process (one thread, layouts recomputed, runs of 3 in separate processes, the branch's start
7d97e50 and its end alternated twice, load ~3): the 131,072-GPU range 5.38-6.05 -> 4.85-6.04 s CPU
(median of 6: 5.89 -> 5.20), DeepSeek-V3 / 2,048 H100 1.74-2.12 -> 1.41-1.87 (2.00 -> 1.77), 405B /
16,384 0.35-0.49 -> 0.24-0.48 (0.40 -> 0.34). Whole process, alternated (CPU = user + system,
median (least) of n; a shared machine, load 2.5-3): the range 7.25 (6.81) -> 6.67 (6.56) s, best wall
7.26 -> 6.76, n=3; DeepSeek-V3 / 2,048 H100 3.24 (3.11) -> 3.05 (2.72), wall 3.16 -> 2.75, n=3; 405B
1.43 (1.35) -> 1.30 (1.18), wall 1.37 -> 1.19, n=5; scenarios/32b_8gpu.yaml 1.08 (0.87) -> 0.81
(0.73), wall 1.47 -> 1.17, n=5; `compare scenarios/purchases.yaml --json` 8.40 (7.74) -> 7.67 (7.31),
n=3, peak memory 443 -> 372 MB. Imports of a solve with compiled modules, the least of 7 runs per module
(-X importtime): 0.365 s: OR-Tools 0.061, numpy 0.060, the spec 0.057 (pydantic model builds:
hardware 0.025, scenario 0.023), pydantic and its helpers 0.05, asyncio, ssl and email pulled in by
pydantic (typing_extensions' deprecated, importlib.metadata) ~0.025, yaml 0.013, click 0.007, the
planner's other modules 0.017. This environment sets PYTHONDONTWRITEBYTECODE: the planner's 51
modules are compiled at every start (0.16 s under the profiler); an install writes their .pyc.
Measured and left: glibc mallopt (M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD 1 GiB) cuts the range's
system time 0.73 -> 0.44 s but its user time rose 4.35 -> 4.58 s (n=3, noise of the same size): no
gain shown; the bound's per-group stage evaluations (slow_clock_stage_bound, layer_units: ~60% of
search_bound) are the model's own arithmetic and were left as they are.
"""


EIGHTH = """Then (issue 14, eighth pass: what is left outside the bound and the plan table), the whole process
first, one thread, CPU (process_time per phase, DeepSeek-V3 / 2,048 H100, two runs, load ~2.5):
imports 0.56-0.67 s; plan table 0.33 s (of which CP-SAT's layouts 0.15 s, most of it importing
OR-Tools); memory verdict 0.70 s (term tables 0.58 s: plan cells 0.11, state formulas 0.12,
activation formulas 0.09, gathers, rank classes and slot layout the rest; bounds and scans 0.05-0.09);
step-time bound 0.58 s; timing the ~2,048 plans the bound keeps 0.07 s; ranking, explanations and
JSON under 0.02 s (H800 alike: 1.65 s after imports). Cuts, each exact (the same JSON for all 19
shipped, benchmark and report scenarios apart from `seconds`; memory and search tests pass):

- the plans that fit are gathered by their row indices, found once, instead of a boolean mask per
  column (16 columns, 733,922 of 1,443,060 rows: 39 -> 22 ms, median of 7);
- model states: the tensor/expert-parallel quotients (non-expert / tp, expert / (ep x etp)) once
  for both the local and the sharded parameter counts (the same operations, so the same bits), and
  the FP8-parameter GEMM correction skipped where no plan gathers FP8 parameters (the default:
  subtracting 0 changes no bit);
- activation cells: torch's ring-attention buffers and the largest tensor's two candidates (a
  layer's largest tensor and the loss's logits; only the choice between them reads the rank) are
  evaluated once per cell (60,204) instead of at every candidate slot (244,602), like the per-layer
  bytes already were.
The term tables (memory_tables.Terms, one thread, in process, the integ state b1167cc and this one
alternated, 3 x 15 builds, load 2.1-2.4): 0.50 / 0.56 / 0.54 -> 0.47 / 0.50 / 0.54 s CPU (medians),
least 0.49 / 0.50 / 0.53 -> 0.38 / 0.46 / 0.49 s: about 0.04 s, ~7% of the tables. Whole process
(alternated, median of 9, user + sys): H100 2.68 -> 2.41 s, H800 2.10 -> 2.15 s; the spread of
single runs on this shared machine (0.9-1.6 s for the same warm solve) is far larger than the
~0.06 s removed, so those two figures are noise, not a measurement of the cuts. Left: the term
formulas themselves (~0.4 us per cell-slot: ~30 numpy passes over each chunk, each needed), and
CP-SAT, which the product contract names for the layout enumeration.
"""


STARTUP = """Then (issue 14: start-up, the plan table and CP-SAT, outside the memory verdict and the bound), each
exact (the same JSON for all shipped, benchmark and report scenarios apart from `seconds`; the same
plan tables, column types and order for 17 scenarios). Measured with compiled modules (a clean
install writes them; this environment sets PYTHONDONTWRITEBYTECODE), CPU = user + system, on this
shared 2-core machine at load 3-6 (other helpers running: the wall times are not meaningful):

- the command line sets OPENBLAS_NUM_THREADS=1 unless the user set it: numpy's OpenBLAS otherwise
  starts a worker thread per core at import, and the planner does no BLAS work (no matmul, dot or
  linalg): numpy's import 0.13-0.17 -> 0.10-0.15 s CPU (n=8);
- the command line sets glibc's malloc to keep freed blocks up to 32 MiB (M_MMAP_THRESHOLD) and not
  to trim below 1 GiB free (M_TRIM_THRESHOLD): by default every block over the (moving) mmap
  threshold is unmapped when freed and faulted in page by page when the next one is allocated, and a
  search allocates and frees arrays of 0.1-30 MB by the hundred. System time, alternated, median of
  6: DeepSeek-V3 / 2,048 H100 0.35 -> 0.24 s (CPU 2.35 -> 2.12), H800 0.44 -> 0.23 s (the same settings through GLIBC_TUNABLES); the
  131,072-GPU range 1.1 -> 0.6 s (n=2, peak 817 MiB both); `compare scenarios/purchases.yaml --json`
  CPU 6.7 -> 5.6 s (n=2, peak 378 -> 400 MiB); serve at concurrency 5,000 1.70 -> 1.42 s (n=2);
  405B / 16,384 unchanged. tests/test_startup.py checks both settings (each test fails without);
- the plan table (solver._candidate_rows): the framework rules OR-ed into one table in place (one
  full-size pass per rule instead of three: 17 -> 12 ms on DeepSeek-V3 / 2,048's 11,126 layout
  projections x 216 choices), the projection codes by lookup table, the layout column narrowed
  before its repeat (no pass over 1.4M rows to narrow it), the columns and the fitting plans' gather
  shared by two threads where they hold 65,536 rows or more (wall only): in process, DeepSeek-V3 /
  2,048 H100 median 100 -> 84 ms CPU (first call 142 -> 126 ms), the 131,072-GPU range least
  325 -> 270 ms;
- CP-SAT's enumeration without symmetry detection (it may remove no solution when all are
  enumerated; tests compare with brute force): the device grid 11.4 -> 8-9.5 ms;
- difflib imported only for the "did you mean" messages.
Whole process, main (82758a0) and this branch alternated, n=5 (load ~5): DeepSeek-V3 / 2,048 H100
CPU median 2.45 -> 2.30 s (least 2.43 -> 2.15), H800 2.42 -> 2.20 (2.10 -> 1.93), 405B / 16,384 1.07 ->
1.02 (0.90 -> 0.81); an earlier n=7 at load ~5: 2.25 -> 2.09, 2.24 -> 1.88, 1.06 -> 1.00; the
131,072-GPU range (n=2) 5.62 -> 5.47 (least 5.53 -> 5.00), peak 799 -> 798 MiB. Peak memory of
DeepSeek-V3 / 2,048 is 294-360 MiB (was 280-300): freed blocks now stay in the threads' heaps.
What remains of the start-up, in process, CPU (DeepSeek-V3 / 2,048 H100, least of 3, load ~4): the command
line 0.03 s; the spec 0.22 s (numpy is imported with the solver: pydantic ~0.1 s, of which asyncio,
ssl and sockets 0.045 s, pulled in by typing_extensions' `deprecated`, which pydantic_core's schema
module applies at import on Python 3.11; importlib.metadata for pydantic's plugin scan 0.017 s;
pydantic's builds of our 20 models ~0.08 s, about a fifth of it under the profiler its isinstance
checks against annotated_types' runtime Protocol, slow on 3.11; yaml 0.02 s); the solver's modules with numpy 0.10 s
(numpy ~0.08); OR-Tools' import 0.07 s (its compiled helper and the libraries it loads: libortools,
SCIP, HiGHS, CBC); CP-SAT's layouts 0.03 s; the plan table 0.08 s; JSON 0.003 s. None of these
third-party costs could be cut from here without patching those packages. Measured and left: the
degrees as CP-SAT integer variables read once per solution (3 values instead of 22 bits: the
enumeration took 30 ms instead of 11), LinearExpr sums read per solution (no gain), CP-SAT with
presolve off (slower), OR-Tools' shared libraries loaded by ctypes in a thread while pydantic is
imported (dlopen holds the interpreter lock: no overlap), skipping pydantic's plugin scan
(PYDANTIC_DISABLE_PLUGINS: 7 ms, but it would disable a user's plugins). Purchase sweeps build one
CP-SAT model per node count (100 x 256: 256 device grids, 0.8-0.9 s CPU of the sweep): each value's
prime exponents are found once and each prime's exponent sum is one LinearExpr.weighted_sum of the
bits holding it (Python's sum of products before), the snake_case methods called directly (the
camel-case ones are OR-Tools' deprecation wrappers): 256 grids 0.79-0.89 -> 0.60-0.73 s CPU, equal
grids for 1,224 (scenario, node count) pairs; the whole sweep's 6.1-7.3 s CPU does not show it above
its noise. 0.6 ms of each model is OR-Tools' CpModel constructor adding its pre-PEP 8 aliases: left.
"""


NINTH = """Then (issue 14, ninth pass: the per-plan work of the memory verdict and the step-time bound), each
exact (the same JSON for all 21 shipped, benchmark and report scenarios apart from `seconds`; tests
compare each path with the one it replaces). In process, one thread, CPU per phase (medians of 5-9,
the previous state and this one alternated in separate processes; a shared machine, load 3-5):

- layout runs (memory_cells.Plans): marked from the solver's layout of each row (one comparison
  instead of one per layout column), the run of every row by np.repeat over the runs (not an
  n-long cumulative sum), the category codes present by a scatter (np.bincount copied the int16
  codes to intp): 0.19 -> 0.09 s on the 131,072-GPU range (8,749,353 plans);
- cell keys (Plans.cells): each run's base repeated over its rows (no gather by run), keys marked
  present block by block as they are made; where torchtitan's plans keep their own ga, every plan's
  key is taken over its own layout by the same arithmetic and each present key then mapped to its
  cell (was a gather of the run shifted by the category code per plan): 0.39 -> 0.35 s on the range;
- two more lower bounds before a plan's own sums are taken (memory_tables._crossed_out): the states'
  largest sum over the cell's slots with the transients' least, and the reverse (at the slot where
  one term peaks, the other is at least its least), narrowed by the rounding margin: plans summed
  slot by slot 242,689 -> 45,579 on the range (0.097 -> 0.031 s), 47,961 -> 14,552 on DeepSeek-V3 /
  2,048 H100;
- the bound's layer units: their parts once per distinct value of what each reads, gathered per
  unit (DeepSeek-V3 / 2,048 H100: 86,478 units, 33,406 compute.layer_costs, 43,783 comm.layer_comm
  with its attention inputs as columns, 2,457 comm.ep_dispatch_s): per-group stage bounds 0.48 ->
  0.33 s there, 0.80 -> 0.67 s on the range.
planner.solve (one thread, 3 processes x 5 solves, 3 x 3 for the range; main at 82758a0 and this
branch alternated): DeepSeek-V3 / 2,048 H100 1.26 -> 1.09 s CPU (median of 15), H800 1.17 -> 1.09,
the range 4.20 -> 3.87 (median of 9); peak memory of the range's whole process 800 -> 806 MiB.
Whole process (user + sys, alternated, medians of 7, load 3-5.5): H100 2.42 -> 2.11 s, H800 2.47 ->
2.52, 405B / 16,384 1.21 -> 1.20: the spread of single runs (0.5 s) is larger than the change.
Measured and left: evaluating the verdict once per plan of a batch range that differs from another
only in an accumulation the memory does not tell apart (4,865,835 distinct of 8,749,353 plans):
the per-plan passes it would spare (~0.35 s) cost nearly as much to find and check (solver
_shared_rows as written: 1.4 s); glibc's mallopt again (no mmap, no trim: the same CPU within the
noise); what remains is the term formulas (~0.5 us per cell-slot), the stage composition per group
of the bound (330,549 groups on DeepSeek-V3 / 2,048: synced_host_floor alone a third), and the rank
scan of the plans the search times (evaluate_table: 0.07 s for 2,048 plans, 0.23 s for the range's
10,236).
"""


TENTH = """Then (issue 14, tenth pass: the fitting plans' table and groups, and the bound's order), each exact
(the same JSON for the shipped, benchmark and report scenarios apart from `seconds`; tests compare
each path with the one it replaces):

- the plans that fit (solver._fitting_plans): the layout columns (one value per layout) repeated
  over the layout runs the kept rows form, from the solver's layout of each row, instead of gathered
  row by row (the categorical columns are still gathered); the runs' first rows are kept for the bound;
- bound.stage_groups told those runs compares only the columns that are not layout columns row by
  row (4 of 12 for DeepSeek-V3), the runs of the rarely changing ones (framework, sp) joined to the
  layout runs as before: the same groups, numbered alike;
- order.ByBound lists the rows left after a block only when another block is read (a search may read
  one block of 65,536 rows or more): 5.7M bounds 67 -> 52 ms, 734k 13.6 -> 12.5 ms (medians of 7, alternated).
In process, one thread, medians alternated with the integ state 8baf5e1 in one process (load 3-5):
the 131,072-GPU range's fitting table 0.149 -> 0.142 s and its groups 0.259 -> 0.248 s (n=4; an
earlier n=3: 0.176 -> 0.150 s for the table); DeepSeek-V3 / 2,048 H100 0.018 -> 0.018 and 0.030 ->
0.028 s. About 0.04 s of the range's solve, 1%: planner.solve of the range (4 processes x 3 solves,
alternated) 3.56 -> 3.61 s CPU median (least 2.97 -> 3.12), whole process (n=7, user + sys, compiled
modules) H100 1.69 -> 1.74 s (least 1.49 -> 1.47), H800 1.68 -> 1.57 (1.35 -> 1.36), the range 3.98 ->
4.32 (3.51 -> 3.63): the spread of single runs (0.3-0.6 s) hides the change either way.
Where the time goes now (in process, one thread, medians of 3 at load ~4): DeepSeek-V3 / 2,048 H100
plan table 0.09-0.11 s, memory verdict 0.54-0.56, fitting table 0.02, bound groups 0.04-0.05, the
bound's per-group stage composition 0.34-0.37, branch and bound 0.10-0.11 (evaluate_table 0.06,
refine 0.02); the range 0.38 (0.8 on the first call, with CP-SAT), 1.76-1.91, 0.14-0.20, 0.20-0.26,
0.57-0.68 and 0.28-0.39 (evaluate_table 0.15, refine 0.05). Start-up with compiled modules: numpy
and pydantic 0.22 s, the spec's models 0.19-0.23 s, the scenario 0.02-0.05 s; a .pth file of this
environment's site-packages also imports certifi at every interpreter start (not the planner's). The
targets of issue 14 (DeepSeek-V3 / 2,048 under 1 s, the range under 3 s, whole process) are not
reached: start-up and the memory verdict alone take ~1 s for DeepSeek-V3 / 2,048.
Measured and left: the layout runs as the only slow columns of stage_groups (framework and sp then
in the row code: a key span twice as large, 0.027 -> 0.040 s on H100, and on the range a span past
DENSE_SPAN, 0.26 -> 0.40 s); pydantic's defer_build on the spec's models (import 0.21 -> 0.19 s, but
the first validation builds them: 0.466 -> 0.464 s in all); np.maximum.at on int64 for the groups'
largest ga (34 -> 51 ms per 5.7M rows); the plan table's choice columns by broadcast copies instead of
np.repeat / np.tile (8.6 -> 21 ms, 16 -> 24 ms per 8.7M rows: slower); Plans.cat block by block
(the category code: 25-30 -> 21 ms on the range, inside the noise of the verdict's 1.8 s).
"""

ELEVENTH = """Then (issue 14, eleventh pass: wall time, where one core idles). A sampler thread reading the main
thread's stack every 4 ms (one run of the 131,072-GPU range, ~3.1 s in solve, 2 cores, load ~1):
memory verdict 1.4 s (both threads busy in 54% of its samples), the bound 0.68 s (28%), the rank
scan of the timed plans (evaluate_table) 0.17 s and bounded_rows' order 0.13 s on one thread, the
plan table 0.3 s (on the first call: CP-SAT's layouts 0.09-0.19 s and first-touch page faults; 0.2 s
when called again in process), the solver's imports 0.42 s. No single-threaded step left is over
~0.12 s: stage_groups of the 5.7M fitting plans 0.11-0.12 s (_dense_ids 25 ms, _first_rows 22 ms,
the runs' heads grouped 22 ms), group_max 15 ms, the three _per_value of the bound's units 0.14 s.

- numpy on Linux asks for transparent huge pages (madvise) on every array of 4 MiB or more
  (numpy/__init__.py hugepage_setup), and this kernel honours madvise (THP enabled=madvise): a huge
  page is zeroed whole at its first touch, also where a lookup table over a key span is written
  sparsely. The range faulted in 233 huge pages (/proc/vmstat thp_fault_alloc; no compaction
  stall). The command line now sets NUMPY_MADVISE_HUGEPAGE=0 unless the user set it (as it does
  OPENBLAS_NUM_THREADS). Exact (the same JSON for every shipped, benchmark and report scenario).
  Whole process, 24 pairs alternated (old = NUMPY_MADVISE_HUGEPAGE=1, numpy's default), load ~1:
  the range 3.76 -> 3.58 s wall median, best 3.42 -> 3.05 s, new faster in 16 of 24 pairs; system
  time 0.84 -> 0.64 s median (lower in every pair), user time a little higher (likely more TLB misses);
  DeepSeek-V3 / 2,048 H100 (5 pairs) 1.67 -> 1.68 s median, best 1.39 -> 1.50; H800 1.66 -> 1.74,
  best 1.61 -> 1.57; 405B / 16,384 1.16 -> 1.03, best 0.86 -> 0.74: no change beyond the noise. One of the five rounds of five pairs showed no wall gain (3.59 -> 3.62 median).
Measured and left: importing OR-Tools' CP-SAT in a thread beside the planner's own imports (wall
0.64-0.98 -> 0.81-1.01 s, 3 runs each: no gain; the shared library's load seems to keep the
interpreter lock). Not tried: the 20-25 ms single-threaded steps of stage_groups on two threads.
The target (the range under 3 s whole process) is reached only in the best runs.
"""

TWELFTH = """Then (issue 14, twelfth pass: what the previous passes left per call, measured in CPU time on a shared
machine, load 1-6: medians of alternated runs; exact: the same JSON for all 21 golden scenarios):

- a node of unknown host memory (hgx-h800): the plans without offload went on to the verdict as a
  boolean-masked copy of every column (16 masks over 1.44M rows; numpy's boolean subscript, whole
  process under callgrind: 310M -> 29M instructions); they now go on as row indices of the plan
  table, whose columns Plans gathers as it reads them (each category column once). In process, one thread, DeepSeek-V3 / 2,048
  H800 (n=18, load ~4): verdict 0.534 -> 0.357 s CPU, solve 1.046 -> 0.914 s;
- keys present numbered by one scatter into an unfilled table (table.present_ranks) instead of a
  running count over the key span (np.cumsum over 1.3M entries took 2.4 x the scatter's time), in the
  bound's groups (_dense_ids), table.value_ranks and the verdict's cells (_compact_ids): the same
  ranks. In process, DeepSeek-V3 / 2,048 H100, the two alternated in one process (n=12, load 5-6): bound 0.591
  -> 0.470 s, verdict 0.662 -> 0.634 s, solve 1.558 -> 1.378 s;
- the bound's layer units read through composed indices (each group's row of the costs, the
  communication and the EP dispatch directly; no table of every unit; the attention inputs ranked
  among the 33k distinct costs, not the 86k units), its groups gather only the columns the stage time
  reads, the slow-clock bound takes the largest stage by np.maximum in place; Terms tells a varying
  key from its first entries;
- OR-Tools is imported with lazy symbol binding (dlopen RTLD_LAZY around its import: CPython asks
  RTLD_NOW, and ld.so's do_lookup_x was 2% of the process's instructions): cp_model() and a small
  solve 0.075 -> 0.059 s CPU (n=10).
Whole process, the branch's start (028b624) and its end alternated, CPU = user + system, median
(least): at load 3.5-4.1 (n=10) DeepSeek-V3 / 2,048 H800 1.72 (1.42) -> 1.57 (1.36) s, H100 1.98
(1.55) -> 1.88 (1.64) s; at load 0.6-1.0 (n=12) H800 1.83 (1.59) -> 1.81 (1.62) s, H100 1.96 (1.72) ->
2.00 (1.80) s: no change beyond this machine's noise. In process at load ~1 (n=12): H100 solve 1.19 ->
1.09 s (bound 0.43 -> 0.39, verdict 0.52 -> 0.49); H800 solve 1.07 -> 1.11 s, while the H800 verdict
with the old and the new path alternated in one process gave 0.480 -> 0.435 s (n=12). Instructions
retired (callgrind, whole process, deterministic; before the last two items): H800 5.91G -> 5.63G,
H100 6.13G -> 6.04G. The aim (15% of the whole process per scenario) is not reached: what remains
is spread thin. Under callgrind (H800): fancy-index gathers 11% of the instructions, np.take 9%,
np.where 8% (the model's formulas), the interpreter and dict lookups 7%, int64 -> float64 casts 2%, dynamic linking 2% (now partly lazy).
Measured and left: the verdict's cell indices as intp instead of int32 (numpy casts int32 indices at
every gather, but converting them once costs as much: 0.618 -> 0.649 s, n=10); np.repeat instead of
np.take for the per-slot gathers of the cell tables (3 x slower for 65k slots); MEMORY_CHUNK 8,192 -
65,536 (the same CPU within noise, whole process, n=8); lazy binding for numpy, pydantic_core and
PyYAML too (7 ms, within noise); avoiding asyncio (typing_extensions' deprecated imports it on Python
3.11, also in 4.15.0, the version installed here: no legitimate way around it from the planner).
"""

THIRTEENTH = """Then (issue 14, thirteenth pass: two cores through a forked child instead of threads; measured, not
kept). The chunks of the verdict's term tables (memory_tables.Terms) and of the bound's per-group
stage times (bound._per_group) were shared between the process and one child forked after their
inputs were built (one thread at the fork, checked in Python and in /proc; output arrays in a shared
anonymous mmap made before the fork, the child leaving by os._exit; a failed child's chunks computed
again by the parent; chunks of 16,384 rows interleaved). Exact (the 21 golden scenarios unchanged;
tests compared the arrays of both paths and a failing child). It does not pay on this machine: a fork
write-protects every page of the parent, and the search rewrites its heap (glibc keeps the freed
arrays for reuse: the process's ~150-650 MB) page by page afterwards. Rewriting 60 MB of recycled heap
takes 0.011-0.024 s without a fork, 0.055-0.067 s after a fork whose child has exited (15.5k minor
faults, ~3 us each: this machine is a VM) and 0.16-0.19 s in each process while the child still
shares the pages (~11 us per fault, with the copy). Whole process, the branch's start and the fork
alternated, load 3-5, median (best) wall, median CPU = user + system of both processes: DeepSeek-V3 /
2,048 H100 (n=7) 4.29 (3.37) -> 4.97 (4.08) s wall, 2.28 -> 2.70 s CPU, minor faults 68k -> 144k,
system time 0.26 -> 0.54 s; H800 3.54 (2.54) -> 3.23 (2.55) s, 1.99 -> 2.06 s CPU, 88k -> 130k faults;
405B / 16,384 1.28 (0.87) -> 1.31 (1.02) s, 0.73 -> 0.76 s CPU; the 131,072-GPU range (n=3) 9.43
(8.01) -> 12.34 (9.88) s, 4.85 -> 5.88 s CPU, 273k -> 454k faults; the fork was faster in 1 of 7, 2 of 7, 2 of 7 and 0 of 3
pairs. The wall times are those of a loaded machine (other sessions' suites ran throughout), but the
parent's own CPU (its critical path, the child running beside it) shows the same without the load's
noise: in process, otherwise one thread (n=5, alternated), solve 1.07 s single-threaded, 1.05 s with
the term tables forked (the parent's faults 0.5k -> 77k: the half of their work it sheds is paid back
in faults), 1.08 s with the bound forked (the last big pass: 26k faults), 1.12 s with both. Not tried: one
fork for both term tables (two forks of ~38k faults each now; one would still cost about as much as
it sheds). The attempt
stays in the history (commit ab2fd03, reverted) for a machine where a page fault is cheap. Also
measured and left: sys.setswitchinterval 5 / 1 / 0.2 ms for the threads (in process, n=7: 2.22 /
2.25 / 2.28 s wall median, within noise); and at load ~4-5 the two threads were slower in wall than
one thread in process (2.75 vs 2.07 s median, n=7), the second core being taken by other work.
"""

STARTUP_AGAIN = """Then (issue 14, start-up again: the spec's pydantic builds and the exit; exact: the same JSON for all 21
golden scenarios, the same table for scenarios/32b_16gpu.yaml apart from its seconds). The cuts are ~1% of a
DeepSeek-V3 / 2,048 process, below what wall times on this shared machine resolve, so they are counted in
instructions (callgrind, whole process, compiled modules; repeat runs agree within ~5M):

- the model modules without `from __future__ import annotations`: pydantic no longer compiles and
  evaluates ~190 annotation strings;
- `python -m planner` and the `planner` script (planner.cli.run) flush the output and end with os._exit
  and the command's code, skipping the interpreter's teardown of every module (exit 0.023-0.031 s CPU ->
  0.012-0.017 s, least of 8-10 runs, measured from the output to the end of the process).
Measured with a third cut that was not merged: the spec's ~190 number and name fields (PosInt, USD, Name, ...)
had pydantic build each type's core schema once (TypeAdapter) and give each field a copy, a field's own
constraints applied on top (importing the spec 1,001M -> 963M instructions, ~2%, a test comparing all 31
models' schemas); left out: it leans on pydantic's schema-generation handler to save ~10 ms. All three:
importing the command line and the solver 1,269M -> 1,219M instructions (-3.9%); whole process
scenarios/32b_8gpu.yaml 1,712M -> 1,642M (-4.0%), DeepSeek-V3 / 2,048 H800 5,518M -> 5,456M (-1.1%):
~15 ms at this machine's ~4G instructions/s. Wall, alternated pairs (the starting commit 9e5f7fd and this
branch, load 1.2-2.3): DeepSeek-V3 / 2,048 H800 best 1.23 -> 1.30 s (worse), median 1.66 -> 1.44, H100 best
1.62 -> 1.42, median 1.91 -> 1.86 (n=10 each), 405B / 16,384 best 0.60 -> 0.56, median 0.75 -> 0.73
(n=12): paired medians -0.07 to -0.12 s, the new one faster in 6-8 of 10-12 pairs; most of that is
noise, the instruction counts are the measurement.
Measured and left: (1) rich (0.04-0.05 s of import) imported in a thread beside the search when a table
is printed: at real-time priority (chrt, no other process running) scenarios/32b_16gpu.yaml wall median
+31 ms and DeepSeek-V3 / 2,048 H100 +48 ms, CPU +23 / +103 ms (n=12 / 10): the import holds the
interpreter lock and the search's numpy passes are too short to hide it. (2) OR-Tools' libraries
dlopen'ed through libc (a ctypes foreign call releases the interpreter lock) in a thread while pydantic
and the spec are imported: the imports took 0.53-0.61 s instead of 0.36-0.47 (n=3; glibc's loader lock
also holds back the main thread's own extension loads); loaded first, the dlopen 0.045-0.067 s saves the
import the same (0.057-0.070 -> 0.016-0.025 s). (3) Optional numbers as `Annotated[float | None, ...]`
(cheaper to build): not equivalent, pydantic does not apply constraints through a nullable schema.
(4) The catalogs: already parsed per entry with libyaml (planner.catalog._items), 0.2-0.4 ms a file,
7 ms for the whole scenario. What remains of the start-up is third-party (least of 3 runs, -X
importtime, compiled): pydantic and pydantic_core ~0.05 s, asyncio, ssl and socket pulled in by
typing_extensions' `deprecated` ~0.025 s, importlib.metadata for pydantic's plugin scan ~0.011 s, numpy
~0.05 s, click ~0.02 s, PyYAML ~0.013 s, OR-Tools ~0.04-0.06 s, this environment's certifi .pth ~0.03 s;
the spec's model builds are now ~195M instructions (~0.05 s; ~250M before these cuts), mostly pydantic's
own per-field work (FieldInfo, schema gathering: 0.1-0.16 ms a field).
"""

FOURTEENTH = """Then (issue 14, 14th pass: what is still repeated or oversized, exact: the same JSON for all 21 golden
scenarios; memory, bound and search tests pass). Measured in CPU time on this shared 2-core machine while
other sessions ran (load 1.5-3; wall times mean little here, see the last item):

- bound_order: dp, mbs and ga are layout columns, equal on every row of a layout run of the fitting
  plans, so the tokens per step are computed once per run and repeated (one pass over the rows instead
  of three, the same int64 numbers): the 131,072-GPU range's 5,739,111 rows (239,560 runs) 0.058 -> 0.040 s,
  DeepSeek-V3 / 2,048 H100 4.0 -> 3.2 ms (medians of 8-10, the old and new code alternated in one process
  on the arrays of a real solve);
- table.present_ranks keeps its rank table in int32 where the ranks fit (the ranks returned in the type
  asked for): a table over a wide, sparsely used span touches half the pages (the units' groups of the
  bound: 86,478 keys over 6.8M; the range: 175,736 over 14.7M). The 72 calls of a range solve replayed
  0.193 -> 0.156 s (median of 8), DeepSeek-V3's 73 calls 0.034 -> 0.034 s (no change);
- the memory cells (memory_cells.Plans.cells): the run heads' layout columns gathered once for both terms
  (were gathered per term), and presence tables over the keys' own range instead of np.unique where that
  range is at most 16 x the keys (_compact_ids; the exact plans' cell keys through table.value_ranks): the
  same ids. Both terms' cells, alternated in one process (n=10-12): the range 0.366 -> 0.327 s median
  (least 0.301 -> 0.272), DeepSeek-V3 / 2,048 H100 0.068 -> 0.065 s (least 0.053 -> 0.048).
Whole process, the branch's start (a109056) and its end alternated, compiled modules, CPU = user + system,
median (least): the range (n=7) 4.10 (3.85) -> 3.91 (3.73) s, wall median 4.90 -> 4.65, best 3.59 -> 3.17;
DeepSeek-V3 / 2,048 H100 (n=9) 1.59 (1.43) -> 1.73 (1.28), best wall 1.21 -> 1.22; H800 1.43 (1.21) -> 1.50
(1.19); 405B / 16,384 0.65 (0.59) -> 0.66 (0.55); a second round of the range (n=7, load 2-3.2) 3.32 (3.09)
-> 3.42 (3.19), best wall 4.78 -> 4.97. The whole process does not resolve these cuts on this machine
(~0.1 s CPU on the range, a few ms on DeepSeek-V3 / 2,048 and 405B, against a spread of single runs of
0.2-0.5 s); the in-process figures above are the measurement. The 1 s target for DeepSeek-V3 / 2,048 is
not reached: start-up is ~0.45 s CPU (interpreter, numpy, pydantic and the spec, OR-Tools) and the solve
~0.9 s (in process, one thread: plan table 0.07, memory verdict 0.385 of which term tables 0.32 (cells
0.06, state formulas 0.07, activation formulas 0.045, the rest gathers per cell-slot), step-time bound 0.30
(groups 0.03, layer units 0.10, per-group stage time at the lowest clock ~0.15), timing 2,048 plans 0.047).
The range solve (2.94 s, one thread): memory verdict ~1.4 (term tables 1.1: cells 0.37, state formulas
0.11, activation formulas 0.15, slot layout 0.07), bound ~0.8 (groups of the 5.7M fitting plans 0.19, layer
units 0.28, per-group stage times ~0.3), timing ~10,000 plans 0.12, the fitting plans' table 0.13.
Measured and left:
- memory verdicts by monotonicity (one threshold per group of plans differing in one axis): the verdict of a
  plan already costs two gathers and an addition per bound (most plans are decided by the bounds); the
  cost is in the cell tables, which every plan reads. What a cell-level cut could spare, measured on
  DeepSeek-V3 / 2,048 H100: state cells whose rank-0 states alone are over the GPU even at the widest
  error band (every plan of them out of memory) are 48,483 of 133,725 cells, 158,378 of 527,958 slots, so up to ~110k of the
  411,423 state evaluations (~0.02 s); every one of the 60,204 activation cells is read by a plan those do
  not decide. An earlier pass measured the plan-level form of this cut (the other slots only for cells of plans not
  out of memory at rank 0) costing as much as it saved; not done;
- timing with each plan's peak rank known (memory at rank 0 and the peak only, memory.stage_memory_at):
  evaluate_table 30% less (DeepSeek-V3 0.067 -> 0.046 s, the range 0.17 -> 0.12 s, the same numbers), but the
  peak would come from the verdict's term tables, kept through the bound phase (each plan's cells, run and
  category code: 14 bytes a plan, 122 MB on the range); not done;
- the bound's "middle" stage where pp < 3: heaviest_middle_rank is rank 0 there, so it repeats the first
  stage's evaluation for 40% of DeepSeek-V3 / 2,048 H100's 330,549 groups (pp 1: 25,024, pp 2: 107,196);
  evaluating it only for the others needs a gather of their ~45 columns and units, about what it spares
  (~5 ms); not done;
- Plans._keys writing its sums in place (no copy per block): 0.297 -> 0.302 s median, reverted; FIRST_BATCH
  256 - 2,048: timing DeepSeek-V3 / 2,048 is per-call overhead (0.036-0.044 s for 256-2,048 rows, the same
  JSON); the Terms' class-to-slot copies kept as indices (estimated ~6 ms on DeepSeek-V3), not done;
- two threads against one, while other sessions run: in process, DeepSeek-V3 / 2,048 H100 (n=7 alternated,
  load ~1.5): CPU median 1.08 vs 0.87 s, wall median 1.22 vs 1.19 s; two processes each spinning 10^7
  additions took 1.52 s against 0.91 s for one (the second core gave ~20% more at that moment). The
  threads pay only on a quiet machine; MEMORY_THREADS is left at 2.
- a whole process is a first solve: DeepSeek-V3 / 2,048 H100's first solve in a process takes 47k minor page
  faults (sys 0.10 s), the second 0.5k; the range's first 180k (0.42 s sys), the second 51k (0.09 s: arrays
  above glibc's 32 MiB mmap ceiling are mapped and faulted in anew each time).
"""

STARTUP_THIRD = """Then (issue 14, start-up a third time: what a solve imported and never used; exact: the same JSON for all
21 golden scenarios apart from `seconds`, the full suite green). Counted in instructions (callgrind, whole
process, compiled modules; the machine was shared at load 2-6, where wall times do not resolve 50 ms):

- asyncio (with ssl, socket, subprocess and its event loops: 144M instructions on its own) was imported by
  typing_extensions' `deprecated`, which runs `import asyncio.coroutines` for every function it wraps on
  Python < 3.12, and pydantic_core.core_schema and pydantic.main wrap functions with it at import.
  planner.spec now imports pydantic's modules while `asyncio.coroutines` names a small module answering
  that one question as asyncio does (planner/spec/_startup.py; the stand-in leaves sys.modules after, a
  later `import asyncio` gets the real one; if a module needs more of asyncio the imports are undone and
  done the ordinary way; tests/test_startup.py checks both);
- importlib.metadata (email, csv, zipfile: 67M) was imported by pydantic's plugin loader at the first
  model build, to scan every installed distribution's entry points. The command line now sets
  PYDANTIC_DISABLE_PLUGINS=__all__ (a value the user set is kept; an empty one turns plugins back on:
  the earlier pass left this out so as not to disable a user's plugins, but the planner's input models
  are no place for observability hooks), and the loader is imported with an importlib.metadata that
  imports the real one on its first attribute read (a library caller with plugins on gets it then);
- planner.spec.purchase and planner.spec.serving (twelve pydantic models, 26 ms in -X importtime) were
  imported by every solve only to tell a purchase file from a scenario by its top-level keys:
  is_purchase now lives in planner.spec.load; Plan's validator is built at its first validation
  (defer_build on Plan alone), and search.fixed is validated through Plan only when it pins a field;
- importlib.resources (with tempfile and zipfile) was imported to read the catalog files: an installed
  planner.catalogs that is a folder of files is now read from that folder (importlib.util.find_spec:
  the file importlib.resources.files names), the source tree's catalogs/ directly, importlib.resources
  only for other layouts (a zip). This environment's certifi .pth imports it anyway, so the gain shows
  without it (`python -S`, site-packages on the path): scenarios/32b_8gpu.yaml 1,538M -> 1,515M.
Import and scenario load (the command line, the spec, the solver's modules, DeepSeek-V3 / 2,048 read):
1,446M -> 1,151M instructions (-20%); whole process, scenarios/32b_8gpu.yaml 1,825M -> 1,548M (-15%),
DeepSeek-V3 / 2,048 H100 6,256M -> 5,978M (-4.4%), H800 5,808M -> 5,534M (-4.7%). -X importtime, least
of 4: 433 -> 342 ms summed over 455 -> 389 modules.
Whole process, the branch's start (dd2dd0e) and its end alternated, compiled modules, n=7, load 2-3, CPU =
user + system, least (median): DeepSeek-V3 / 2,048 H100 1.44 (1.80) -> 1.37 (1.63) s, H800 1.26 (1.43) ->
1.17 (1.26), 405B / 16,384 0.60 (0.68) -> 0.55 (0.63), scenarios/32b_8gpu.yaml 0.45 (0.47) -> 0.39 (0.41);
best wall (through pyenv's shell shim) 1.70 -> 1.76, 1.77 -> 1.77, 0.78 -> 0.72, 0.61 -> 0.53: the load
hides the wall time.
Measured and left: defer_build on every model (-26M, 2% of the import and load: the builds move to the
first validation, where Scenario builds the nested models inline), the cyclic collector off while the
modules are imported and the scenario read (-9M on scenarios/32b_8gpu.yaml). What the start-up still
holds (import and load ~1.15G instructions, ~0.25 s CPU here): the interpreter and `site` 140M (this
environment's certifi .pth ~110M of it, but most of what it imports a solve imports anyway: ~33M net,
`python -S`), numpy ~280M, OR-Tools ~200M (dlopen and relocation of libortools ~130M, pybind11's class
registration; CP-SAT is the contract's layout enumerator), pydantic with annotated_types and
typing_extensions ~250M, our models' builds ~200M, PyYAML ~100M (55M of it compiling its pure-Python
reader's Unicode-range NON_PRINTABLE regex at import, although libyaml parses: Python 3.11's
re._compiler on wide ranges), click ~70M. The first solve in a process costs 0.1 s CPU more than a repeat (0.9-1.0 vs 0.8 s
in process, one thread): first-touch page faults spread over the numpy passes, not a cache to keep.
Withdrawn at merge: the asyncio and importlib.metadata stand-ins (planner/spec/_startup.py) depended on
library internals (typing_extensions' `deprecated`, pydantic's plugin loader): under pydantic 2.14.4, which a
clean install (.ci/run) takes, the loader no longer imports importlib.metadata as the stand-in expected and
its tests failed, while pydantic 2.13.4 passed. A start-up saving of ~0.2G instructions (~3% of the
DeepSeek-V3 / 2,048 process) is not worth a dependency on private code of two libraries; the purchase and
serving models off the solve path, Plan's deferred build, the plugin scan off and the catalog reader stay.
"""

FIFTEENTH = """Then (issue 14, 15th pass: page faults, and the batch range's work repeated per batch; exact: the same
JSON for all 18 golden scenarios (every shipped and benchmark one), the full suite green). This VM takes
~2.5-3 us per minor page fault: at the pass's start (fbac36b) a whole process of DeepSeek-V3 / 2,048 H800
took 95k faults (0.22 s system time of 0.94 s CPU) and the range 390k (0.76 of 2.49 s). Faults are counted
per child process (getrusage ru_minflt, repeatable within ~2%), unlike the wall times of this shared machine:

- bound._dense_ids: _dense_groups renumbers a key whose span is the distinct keys so far x the next column's
  values (13.2M for 85k keys on DeepSeek-V3 / 2,048, 29.2M for 176k on the range); the presence and rank tables
  of table.present_ranks over such a span (5 bytes per key of the span, every page touched by the scatter of
  the keys) took 92-109 ms in a fresh process, first-touch faults. Keys spread over more than 32 x their count
  (and 1M) are now ranked by sorting (np.unique: the same ranks, 6-23 ms); this replaces, for those calls, the
  int32 rank table of the 14th pass. DeepSeek-V3 / 2,048 H800 whole process: faults 95k -> 72k, CPU median
  0.91 -> 0.87 s (n=5);
- solver._shared_runs: with several global batches and the term tables, a layout equal to an earlier one but
  for an accumulation the memory does not tell apart (in_flight_ga) holds the same categorical choices in the
  same order (the framework rules do not read ga; the path is off where they do), so each of its plans takes
  the verdict (and peak rank) of the plan at the same place in the group's first run; torchtitan's plans keep
  their own ga and are evaluated. Found per layout run (the range: 242,930 runs in 81,124 groups), not per
  plan (_shared_rows: 1.4 s, what an earlier pass measured and left): 4,865,835 of the range's 8,749,353
  plans evaluated. In process, one thread, the verdict 0.93-1.16 -> 0.64-0.71 s, plus ~0.13 s to find the
  runs and copy the verdicts (~0.27 s in a fresh process: first-touch faults again);
- malloc (planner/cli.py): blocks beyond glibc's largest mmap threshold (32 MiB; a column of the range's
  8.7M plans is 35-70 MB) were mapped and faulted in anew at every allocation, and each thread of the
  search kept its own arena, whose freed blocks the other could not reuse. M_MMAP_MAX 0 takes every block
  from the heap (glibc still maps where the heap cannot grow) and M_ARENA_MAX 1 gives the threads one arena.
  tests/test_startup.py checks both (40-64 MiB blocks: 16k faults, 43k without; two threads taking turns on
  16 MiB blocks: 7 faults, 8-12k without);
- peak memory of the range: bound_order keeps the tokens per step per layout run (read by rows through the
  runs' heads; ub is their float64 repeat divided in place, the same bits as int64 / float64), search_bound
  keeps its groups of the rows in int32 for refine, the shared verdict's rows are int32 (tracemalloc peak
  701 -> 654 MiB, the verdict's term tables now the peak);
- the bound's per-value (layer units) and per-group passes split their rows evenly between the two threads
  where they hold fewer than two chunks of 65,536 (solver.even_chunk): DeepSeek-V3 / 2,048's 84,937 groups ran
  as chunks of 65,536 and 19,401, its 33,406 layer costs and 43,783 communication inputs as one chunk each
  (one thread). Wall time only (the same bounds; test): by the passes' one-thread CPU ~0.07 s less wall on a
  quiet 2-core machine; not resolved here at load ~3 (in process, n=8, the same within noise either way),
  and not in the table below, which was measured before it.
Whole process, fbac36b and this pass alternated (CPU = user + system, median (least); load 2.4-3.8, other
sessions running; wall medians mean little at that load):

| question | n | CPU s | page faults | system s | peak MiB | wall median s |
|---|---:|---:|---:|---:|---:|---:|
| DeepSeek-V3 / 2,048 H800 | 6 | 0.936 (0.924) -> 0.857 (0.842) | 95.1k -> 58.6k | 0.22 -> 0.16 | 336 -> 266 | 1.43 -> 1.25 |
| DeepSeek-V3 / 2,048 H100 | 6 | 0.988 (0.923) -> 0.913 (0.849) | 109.0k -> 62.1k | 0.24 -> 0.16 | 361 -> 280 | 1.45 -> 1.26 |
| 405B / 16,384 | 6 | 0.455 (0.436) -> 0.446 (0.434) | 32.0k -> 29.7k | 0.08 -> 0.08 | 164 -> 156 | 0.63 -> 0.60 |
| the 131,072-GPU range | 4 | 2.49 (2.42) -> 2.14 (2.07) | 390k -> 187k | 0.76 -> 0.39 | 911 -> 774 | 3.62 -> 3.23 |
| serve, 70B at concurrency 5,000 | 3 | 1.05 (1.00) -> 0.99 (0.94) | 60.6k -> 50.0k | 0.18 -> 0.17 | 236 -> 234 | - |
| serve, 1.5B at concurrency 100,000 | 1 | 9.07 -> 8.44 | 491k -> 144k | 1.37 -> 0.42 | 595 -> 601 | - |
| compare purchases.yaml --json | 2 | 2.90-3.24 -> 2.78-2.80 | 110-115k -> 90k | 0.23-0.27 -> 0.19-0.27 | 424 -> 374 | - |

User time barely moved (the range 1.73 -> 1.76 s): the cuts are the kernel's page work, and the range's
shared verdict is paid back in its own per-plan passes (finding the runs, gathering the evaluated rows
through int32 indices, copying the verdicts). Measured and left:
- huge pages: glibc's malloc with transparent huge pages (GLIBC_TUNABLES glibc.malloc.hugetlb=1) cut
  DeepSeek-V3 / 2,048 H800's faults 58k -> 8.4k but raised system time 0.15 -> 0.41 s (a huge page is
  zeroed and mapped whole: dear on this VM); NUMPY_MADVISE_HUGEPAGE=1 with the new heap settings: no
  change (faults 58k -> 54k, CPU the same);
- MEMORY_CHUNK 16,384 and 32,768: faults 58k -> 49k and 52k, peak 265 -> 226 and 239 MiB, CPU the same within
  the noise (median 0.90 / 0.95 / 0.92 s at load ~5): left at 65,536;
- the shared verdict's rows in int64: numpy converts int32 indices at every gather (4.9M rows of an int8
  column: 7.6 ms against 3.2 ms), ~30 ms of the range; int32 kept for the peak (the 800 MiB aim);
- the cyclic collector during the search: 14 collections, 2 ms in all (the CLI freezes the start-up's
  objects): nothing left there.
Where the time goes now, in process, one thread, CPU: DeepSeek-V3 / 2,048 H800 solve 0.55-0.62 s as a
process's first (plan table 0.13 on the first call: CP-SAT's library load 0.03 s, its enumeration, first
touches; 0.04 s after), memory verdict 0.27-0.34 (the term formulas per cell-slot and their gathers ~0.26),
step-time bound 0.25-0.30 (layer units 0.08-0.10, per-group stage times at the lowest clock 0.08-0.15, the
columns each function reads, recorded on a one-row table, 0.025), timing 2,048 plans 0.025; imports and
scenario ~0.25 s and the interpreter ~0.09 s. The range: plan table 0.26-0.38 (first call), verdict 0.8-0.95,
fitting table 0.05-0.07, bound 0.47-0.60 (groups 0.09-0.15, units 0.15, per-group stage times 0.15), timing
~10,000 plans 0.07. Page faults left: ~18k of start-up (interpreter and imports) and, in the search, about
one per 4 KiB of its peak (DeepSeek-V3 / 2,048 ~40k for a ~180 MiB peak): each new high of the heap.
benchmarks/speed.py --runs 5 after this pass (speed_results.md; load 1.1 at its start and ~2 during it, run at
nice 10 beside other sessions; DeepSeek-V3 / 2,048's wall ~ its CPU, so the second core gave little): 405B /
16,384 0.43 s, DeepSeek-V3 / 2,048 H800 0.79 s and H100 0.84 s, the range 2.01 s at 780 MiB (an earlier run at
load ~3, before the even chunks: 0.46 / 0.84 / 0.92 / 2.08 s, 763 MiB; the range's peak varies by ~20 MiB with
the threads' interleaving). The aims of this pass were DeepSeek-V3 / 2,048 at ~0.6 s (not reached: ~0.8 s CPU,
start-up ~0.35 and the first solve ~0.45-0.5) and the range at ~2.2 s under 800 MiB (reached in these runs, the
peak with ~20 MiB to spare).
"""


SERVING = """## Serving search at a fixed concurrency

Before: `planner serve` under `concurrency: C` listed every row of layout x engine / weights / KV /
max_batch / attention DP (a group) x replica count r' (1 .. min(GPUs / instance, C)) x prefill split
(colocated, or p = 1, 2, 4 .. 64 prefill instances beside r' - p decode ones) and ran the whole time
model on each: groups x C x log C rows. Llama-3.1-70B at concurrency 5,000 on 64 DGX H100
(`benchmarks/scenarios/serve_70b_conc5000.yaml`): 1,785,720 rows, 14.3 s CPU / 23.3 s wall, 2.46 GB
peak, whole process; under cProfile 16.3 s in `evaluate`, of which `timing.iteration_s` 11.4 s (11
calls over the rows), the disaggregated prefill pool 5.3 s (the same for every replica count), and
`comm_links` 1.9 s (the same for every count and split).

What replaced it (planner/serve/concurrency.py; exact: the same numpy expressions on the same
inputs): memory, links, batch limits and the prefill pool once per group; the time model once per
(group, decode count), shared by every split, and once per group for all counts whose batch is full
(b = min(b_cap, C / r) = b_cap); groups whose memory or batch fails and (group, count) rows missing
the TPOT target drop out before the splits are combined elementwise; blocks of about 200,000
(group, count) rows on two threads bound memory; each block keeps its first top x (max_batch
values) rows by the exact ranking (a key's best row always ranks there), preselected by
np.partition on the primary key. Plans, order, `evaluated` and `feasible` equal the full listing's
(tests/test_serve_concurrency.py compares 17 small scenarios, 4 of them with no feasible plan; the JSON of both concurrency
scenarios below and of `scenarios/serve_70b.yaml` is unchanged).

Whole process on this shared 2-core machine, load ~2 (before: the starting commit, one run; after:
`benchmarks/speed.py --match serve:`, best of 5, 3 for the last row; CPU = user + system):

| question | rows | before CPU s / wall s / peak | after CPU s / wall s / peak |
|---|---:|---:|---:|
| 70B, concurrency 5,000, 512 H100 | 1,785,720 | 13.2 / 13.1 / 2.46 GB | 1.37 / 1.37 / 0.21 GB |
| 1.5B, concurrency 100,000, 1,024 H100 (serve_tiny_conc100k.yaml at 128 nodes) | 825,960 | 6.7 / 6.8 / 1.29 GB | 1.29 / 1.31 / 0.13 GB (one run) |
| 1.5B, concurrency 100,000, 32,768 H100 | 28,493,400 | not run (about 35 x the row above) | 13.1 / 13.0 / 0.57 GB |
| 70B, 40 requests/s, 64 H100 (rate: unchanged path) | - | - | 0.98 / 0.98 / 0.10 GB |

Where nothing is feasible the explanation (minima over the rows) reads only the rows that attain
them: the 1.5B question on 4,096 H100 with an unmeetable TPOT target, 3,495,960 rows, 3.1 s CPU / 0.31 GB.

What remains (the 32,768-GPU case): the time model on 3.6M (group, count) rows per flavour (about
two thirds) and the elementwise combination of 28.5M rows (most of the rest). Each row's TPOT and
TTFT are needed for the exact `feasible` count; a bisection on the count would need the iteration
time to be monotone in the batch, which chunked-prefill shares and CUDA-graph padding do not
guarantee, so it is not used.
The 70B concurrency search itself is about 0.6 s CPU in process (warm); the rest is start-up.
"""


def profile(path: Path, lines: int) -> str:
    solver.MEMORY_THREADS = 1  # cProfile sees the calling thread only: the search's chunks run in it here
    sc = load_scenario(path)
    solve(sc)
    _LAYOUT_CACHE.clear()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    r = solve(sc)
    prof.disable()
    wall = time.perf_counter() - t0
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(lines)
    body = "\n".join(line for line in out.getvalue().splitlines() if line.strip())
    return (f"## {path.name}\n\n{r['considered']:,} plans considered, {r['valid']:,} runnable, "
            f"{r['fits_memory']:,} fit in memory; {wall:.2f} s under the profiler.\n\n```\n{body}\n```\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=25)
    args = ap.parse_args()
    parts = ["# Search profile", "",
             f"`python benchmarks/speed_profile.py --lines {args.lines}` on {platform.machine()}, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
             f"{os.getloadavg()[0]:.1f} (a shared machine: the shares matter, not the seconds).", "",
             FINDINGS, LATER, EIGHTH, STARTUP, NINTH, TENTH, ELEVENTH, TWELFTH, THIRTEENTH, STARTUP_AGAIN, FOURTEENTH,
             STARTUP_THIRD, FIFTEENTH, SERVING]
    parts += [profile(p, args.lines) for p in SCENARIOS]
    (HERE / "speed_profile.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
