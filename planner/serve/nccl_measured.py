"""Measured NCCL collective times vs message size, where each serving engine runs NCCL, and the measured
times of each engine's own all-reduce kernel below that size (custom_table, catalogs/custom_allreduce_measured.csv).

Data: catalogs/nccl_measured.csv, NVIDIA's measured NCCL tables as collected for AIConfigurator
(github.com/ai-dynamo/aiconfigurator @095f58a5, Apache-2.0; aic-core/src/aiconfigurator_core/systems/data/
<gpu>/comm/nccl/<version>/nccl_perf.parquet, fp16; extracted by benchmarks/collective_check.py --extract):
all_gather, reduce_scatter, all_reduce and alltoall on 2 / 4 / 8 GPUs of one 8-GPU NVSwitch board, buffers of
1 MiB to 128 MiB (the whole buffer: gathered output, reduce-scatter / all-reduce input). Systems: H100 SXM
(DGX H100, NCCL 2.27.3), H200 SXM (HGX H200, 2.26.2), B200 (DGX B200, 2.27.5); HGX B300 boards take
B200's NCCL tables (same NVLink 5 board: NCCL_BOARD_TRANSFERS). GB200 and GB300 (NCCL 2.29.2, 'collected'
provenance): 2 and 4 GPUs of an NVL72 rack (one compute tray's GPUs, linked through the rack's NVLink 5
switches), so those tables apply to NVL72 nodes (MEASURED_DOMAIN) and groups of 2 or 4.
AMD: catalogs/rccl_measured.csv (same columns; kept apart so that collective_check.py --extract, which rewrites
nccl_measured.csv, leaves it alone): RCCL all-reduce on all 8 MI300X of one xGMI-mesh board, rccl-tests
all_reduce_perf -b 8 -e 16G -f 2 -g 1, one process per GPU, float sum, out-of-place time of the default run
(no graph), RCCL 2.22.3, ROCm 6.3.0 (AMD ROCm blog "Understanding RCCL Bandwidth and xGMI Performance on AMD
Instinct MI300X", 2025-03-02, ROCm/rocm-blogs blogs/software-tools-optimization/mi300x-rccl-xgmi/README.md
@0e81c2ca). The same post's graph run (-G 1) agrees within 1% from 2 MiB up (1 MiB: 19.4 against 27.4 us).
MI325X boards (same UBB platform, 7 xGMI links x 64 GB/s per GPU: catalogs/nodes.yaml) take it
(NCCL_BOARD_TRANSFERS); MI355X (7 x 76.5 GB/s links) does not.

Model: the collective's time at b bytes is the measured time interpolated linearly in b between the two
table sizes around it (each segment is latency + size / bandwidth read off the table; outside the table
the end segment is extended, floored at 0). Nothing is fitted. It replaces planner.estimate.comm's
latency + size / (spec x efficiency) only where NCCL runs (nccl_floor_bytes) on a node whose GPU has a
table and whose group sits on the fabric the table was measured on (measured_table: an 8-GPU NVSwitch board
or an NVL72 rack for NVIDIA, the 7-link xGMI mesh board for MI300X); elsewhere the comm model stands.
The training estimator uses it for one collective: the expert-parallel all-to-all of the all-to-all token
dispatcher (planner.estimate.comm.ep_all_to_all_s); its other collectives keep the comm model.
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache

import numpy as np

from planner.catalog import catalog_file_text
from planner.estimate import table as T
from planner.serve import engines as E

# GPU catalog name -> system key of the measured table
SYSTEMS = {"h100-sxm-80gb": "h100", "h200-sxm-141gb": "h200", "b200": "b200", "gb200": "gb200", "gb300": "gb300",
           "mi300x": "mi300x"}
# NVLink / xGMI domain (GPUs behind one scale-up fabric) of the system each table was measured on: the 8-GPU DGX /
# HGX boards, the 72-GPU GB200 / GB300 NVL72 racks (AIConfigurator systems/data/<gpu>/comm/nccl; device 'NVIDIA
# GB200' / 'NVIDIA GB300'), AMD's 8-GPU UBB board. A table applies on a node with that domain size and fabric
# (_on_board).
MEASURED_DOMAIN = {"h100": 8, "h200": 8, "b200": 8, "gb200": 72, "gb300": 72, "mi300x": 8}
# Links per GPU of the switchless mesh board each system's table was measured on (xGMI: every GPU wired to
# each of its 7 peers, catalogs/nodes.yaml scaleup_mesh_links); systems not listed: NVSwitch fabrics.
BOARD_MESH_LINKS = {"mi300x": 7}
# GPUs without a table of their own whose 8-GPU boards have the measured board's NVLink generation, link
# count and NVSwitch fabric, so NCCL's bandwidth-bound collectives there are that board's (TRANSFERRED, not
# measured): HGX B300 = 18 NVLink 5 links per GPU, 1.8 TB/s bidirectional, through NVLink 5 switches, as
# DGX B200 (NVIDIA HGX platform specifications; catalogs/nodes.yaml dgx-b200 / hgx-b300, both 900 GB/s per
# direction). NCCL tables only: the engines' own all-reduce kernels (custom_table) stay per GPU. MI325X boards
# take MI300X's RCCL table: the same UBB platform and xGMI mesh, 7 links x 64 GB/s per GPU (catalogs/nodes.yaml
# mi300x-8 / mi325x-8, whose RCCL efficiency is already transferred the same way); TRANSFERRED, not measured.
NCCL_BOARD_TRANSFERS = {"b300": "b200", "mi325x": "mi300x"}
BOARD_GPUS = 8  # the tables were measured on 8-GPU boards (DGX / HGX NVSwitch; AMD UBB xGMI mesh)
GRID = np.array([2.0 ** k for k in range(20, 28)])  # 1 MiB .. 128 MiB, the sizes of every table

# Where the engines leave their own all-reduce kernels for NCCL (bytes of the bf16 buffer; NCCL above):
# TensorRT-LLM (allreduce_strategy default 'AUTO', tensorrt_llm/llmapi/llm_args.py; AUTO in
# cpp/tensorrt_llm/thop/allreduceOp.cpp selectImplementation / ifFallbackToNCCL: NCCL when the message exceeds customAllReduceUtils.h getMaxRequiredWorkspaceSize,
# 16,000,000 B for 2 ranks, 8,000,000 B for more, NVIDIA/TensorRT-LLM @005b299b; below it a per-(SM, TP,
# hidden, tokens) lookup table, selectStrategyLookUpTable, picks one-shot / two-shot kernels or NCCL).
TRTLLM_CUSTOM_AR_MAX = {2: 16e6}
TRTLLM_CUSTOM_AR_MAX_DEFAULT = 8e6
# That lookup table (customAllReduceUtils.h AllReduceBestStrategyTableSM90 / SM100, @005b299b), fusion
# RESIDUAL_RMS_NORM (the all-reduce + residual + RMSNorm TensorRT-LLM's PyTorch decoder layers call, e.g.
# modeling_llama.py pre/post feed-forward fusion): log2 of the fewest tokens at which it first selects NCCL,
# per SM (<= 9.x as 90, >= 10 as 100), TP size and hidden row (128, 256, ..., 8192; row = floor(log2(hidden)) - 7).
# Hidden sizes above 8192 and 32,768+ tokens fall outside the table, which then returns NCCL_SYMMETRIC.
TRTLLM_LUT_NCCL_LOG2_TOKENS = {
    90: {2: (12, 13, 12, 12, 12, 11, 10), 4: (12, 11, 12, 12, 11, 10, 9), 8: (11, 11, 12, 12, 8, 7, 6)},
    100: {2: (12, 12, 13, 13, 12, 11, 10), 4: (12, 12, 12, 12, 11, 10, 9), 8: (12, 12, 11, 12, 11, 10, 9)}}
# vLLM: custom all-reduce (vllm/distributed/device_communicators/custom_all_reduce.py, max 8 MiB) and, with
# PyTorch symmetric memory (VLLM_ALLREDUCE_USE_SYMM_MEM, default 1 in vllm/envs.py), the symm-mem all-reduce
# up to SYMM_MEM_ALL_REDUCE_MAX_SIZES (vllm/distributed/device_communicators/all_reduce_utils.py), per compute
# capability and world size; NCCL (pynccl) above.
MIB = 2.0 ** 20
VLLM_SYMM_MEM_MAX = {9.0: {2: 64 * MIB, 4: 32 * MIB, 6: 64 * MIB, 8: 64 * MIB},
                     10.0: {2: 8 * MIB, 4: 32 * MIB, 6: 128 * MIB, 8: 128 * MIB}}
# vLLM on ROCm (0.10, the ROCm dev-docker rows): the same custom all-reduce up to its 8 MiB max_size (the MI300X
# xGMI mesh counts as fully connected), inside the HIP graphs of the decode steps; QuickReduce is off by default
# (vllm/envs.py VLLM_ROCM_QUICK_REDUCE_QUANTIZATION = "NONE"); the symmetric-memory path is CUDA only
# (cuda_communicator.py); RCCL (pynccl) above 8 MiB. A ROCm GPU has no compute capability here: 8 MiB.
# SGLang: custom all-reduce up to _MAX_CAR_SIZE = 8 MiB on CUDA, 16 MiB on ROCm ("crossover is at 16MB
# buffer size for ROCm", _MAX_CAR_SIZE = 2 * 8192 * 1024 under is_hip; sglang/srt/distributed/
# device_communicators/custom_all_reduce.py), NCCL / RCCL above (symmetric memory only with --enable-symm-mem,
# off by default).
SGLANG_CUSTOM_AR_MAX = 8 * MIB
SGLANG_CUSTOM_AR_MAX_ROCM = 16 * MIB


@lru_cache(maxsize=None)
def tables() -> dict:
    """{(system, op, gpus): seconds at each GRID size} from catalogs/nccl_measured.csv and rccl_measured.csv."""
    out: dict = {}
    for name in ("nccl_measured.csv", "rccl_measured.csv"):
        for r in csv.DictReader(io.StringIO(catalog_file_text(name)[0])):
            out.setdefault((r["gpu"], r["op"], int(r["gpus"])), {})[int(r["bytes"])] = float(r["latency_ms"]) * 1e-3
    return {k: np.array([v[int(b)] for b in GRID]) for k, v in out.items() if len(v) == len(GRID)}


def nccl_system(node):
    """System key of the NCCL table for the node's GPU: its own (SYSTEMS) or the board it shares NVLink
    and NVSwitch with (NCCL_BOARD_TRANSFERS); None without either."""
    name = getattr(node.gpu, "name", None)
    return SYSTEMS.get(name) or NCCL_BOARD_TRANSFERS.get(name)


def measured_table(node, op: str, group, measured: bool = True) -> np.ndarray:
    """Measured seconds at the GRID sizes for each group size in `group` (array, one row per entry), NaN
    where no table applies: the node's GPU has no table, the node is not the fabric the table was measured on
    (_on_board), or the group size was not measured (1, 3, 5-7, or more than one board; the MI300X table: 8
    only). measured False: NaN throughout, the comm model everywhere (the 'before' of
    benchmarks/collective_size_check.py)."""
    group = np.atleast_1d(np.asarray(group))
    out = np.full((len(group), len(GRID)), np.nan)
    if not measured:
        return out
    system = nccl_system(node)
    if system is None or not _on_board(node, system):
        return out
    for g in T.distinct(group):
        row = tables().get((system, op, int(g)))
        if row is not None:
            out[group == g] = row
    return out


def interp_s(rows: np.ndarray, nbytes) -> np.ndarray:
    """Per row (plan): its measured times at GRID interpolated linearly in bytes at nbytes (one value per
    row, or broadcast), the last segment extended above the table; NaN rows stay NaN, and so do sizes below
    the smallest measured one: there a collective's time flattens to its latency, which a line through the
    two smallest sizes does not follow (it runs to ~0 at 0 bytes), so the caller keeps the link model."""
    b = np.broadcast_to(np.asarray(nbytes, dtype=float), (rows.shape[0],))
    i = np.clip(np.searchsorted(GRID, b) - 1, 0, len(GRID) - 2)
    r = np.arange(rows.shape[0])
    t0, t1 = rows[r, i], rows[r, i + 1]
    slope = (t1 - t0) / (GRID[i + 1] - GRID[i])
    return np.where(b < GRID[0], np.nan, np.maximum(t0 + (b - GRID[i]) * slope, 0.0))


# The engines' own all-reduce kernels below the NCCL floor (all_reduce_nccl_floor), measured by NVIDIA for
# AIConfigurator: catalogs/custom_allreduce_measured.csv (benchmarks/custom_allreduce_extract.py: SGLang 0.5.9
# custom all-reduce, TensorRT-LLM 1.2.0rc5 allreduce op, vLLM 0.14.0 / 0.19.0 custom all-reduce; bf16, inside
# CUDA graphs where the data has both; 2 / 4 / 8 GPUs of one 8-GPU NVSwitch board; 256 B to 1 GiB).
CUSTOM_GRID = np.array([2.0 ** k for k in range(8, 31)])
ENGINE_KEYS = {E.VLLM: "vllm", E.SGLANG: "sglang", E.TRTLLM: "trtllm"}


@lru_cache(maxsize=None)
def custom_tables() -> dict:
    """{(system, engine key, gpus): seconds at each CUSTOM_GRID size} from catalogs/custom_allreduce_measured.csv,
    as the lower non-decreasing envelope of the measured times (each size takes the least time measured at it
    or any larger size): the tables dip in places (e.g. TensorRT-LLM on 2 H100, 9.9 us at 16 KB, 3.4 us at
    32 KB, where its kernel choice switches), and a smaller message never needs more than a larger one's
    kernel; without it a step could get shorter as the batch grows."""
    out: dict = {}
    for r in csv.DictReader(io.StringIO(catalog_file_text("custom_allreduce_measured.csv")[0])):
        out.setdefault((r["gpu"], r["engine"], int(r["gpus"])), {})[int(r["bytes"])] = float(r["latency_ms"]) * 1e-3
    return {k: np.minimum.accumulate(np.array([v[int(b)] for b in CUSTOM_GRID])[::-1])[::-1]
            for k, v in out.items() if len(v) == len(CUSTOM_GRID)}


def custom_table(node, engine, group, moe: bool = False, measured: bool = True) -> np.ndarray:
    """The engine's measured own all-reduce times at the CUSTOM_GRID sizes, one row per plan (engine and
    group size per entry), NaN where none applies (as measured_table: GPU without data, not the measured
    NVSwitch board, group size not measured). SGLang serving an MoE model on sm 9.x / 10.x runs FlashInfer's
    fused all-reduce (TensorRT-LLM's kernel) instead of its custom all-reduce (sglang_uses_trtllm_allreduce):
    those plans get the TensorRT-LLM table. measured False: NaN throughout (as measured_table)."""
    engine, group = np.broadcast_arrays(np.atleast_1d(np.asarray(engine)), np.atleast_1d(np.asarray(group)))
    out = np.full((len(group), len(CUSTOM_GRID)), np.nan)
    system = SYSTEMS.get(getattr(node.gpu, "name", None))
    if not measured or not _on_board(node, system):
        return out
    keys = dict(ENGINE_KEYS)
    if sglang_uses_trtllm_allreduce(node, moe):
        keys[E.SGLANG] = "trtllm"
    for e, key in keys.items():
        for g in T.distinct(group):
            row = custom_tables().get((system, key, int(g)))
            if row is not None:
                out[(engine == e) & (group == g)] = row
    return out


def sglang_uses_trtllm_allreduce(node, moe: bool) -> bool:
    """SGLang turns on FlashInfer's all-reduce fusion (flashinfer.comm's port of TensorRT-LLM's one- / two-shot
    all-reduce + residual + RMSNorm kernel) by itself for the MoE families DeepseekV3, GptOss, Glm4Moe,
    Qwen3Moe, KimiK25 on sm 9.x / 10.x with TP > 1 on one node and no DP attention
    (sglang/srt/server_args.py _handle_model_specific_adjustments, 0.5.x; InferenceX's SGLang 0.5.9
    DeepSeek-R1 launches also pass --enable-flashinfer-allreduce-fusion). Taken here for every MoE model
    (the list is those families; other MoE families keep the custom all-reduce there, not separated)."""
    cc = getattr(node.gpu, "compute_capability", None) or 0.0
    return bool(moe) and 9.0 <= cc < 11.0 and node.gpus_per_node > 1


def interp_custom_s(rows: np.ndarray, nbytes) -> np.ndarray:
    """Per row: the measured own-kernel time at nbytes, linear in bytes between CUSTOM_GRID sizes (below the
    smallest size, 256 B, its time: a latency floor); NaN rows stay NaN."""
    b = np.maximum(np.broadcast_to(np.asarray(nbytes, dtype=float), (rows.shape[0],)), CUSTOM_GRID[0])
    i = np.clip(np.searchsorted(CUSTOM_GRID, b) - 1, 0, len(CUSTOM_GRID) - 2)
    r = np.arange(rows.shape[0])
    t0, t1 = rows[r, i], rows[r, i + 1]
    return t0 + (b - CUSTOM_GRID[i]) * (t1 - t0) / (CUSTOM_GRID[i + 1] - CUSTOM_GRID[i])


def _on_board(node, system) -> bool:
    """The node's scale-up fabric is the one the system's table was measured on: a domain of MEASURED_DOMAIN
    GPUs (an 8-GPU board, or an NVL72 rack for GB200 / GB300), switched (no mesh links) for the NVIDIA systems,
    the mesh of BOARD_MESH_LINKS links per GPU for the AMD one."""
    domain = MEASURED_DOMAIN.get(system, BOARD_GPUS)
    return node.scaleup_domain == domain \
        and (getattr(node, "scaleup_mesh_links", None) or None) == BOARD_MESH_LINKS.get(system)


def trtllm_lut_floor(cc: float, tp, hidden) -> np.ndarray:
    """Bytes (bf16, tokens x hidden x 2) from which TensorRT-LLM's AUTO lookup table selects NCCL:
    2^TRTLLM_LUT_NCCL_LOG2_TOKENS tokens x hidden x 2 (just under, as the table indexes floor(log2(tokens)));
    0 (always NCCL) for hidden above the table's 8192; inf for group sizes the table lacks or no hidden."""
    tp = np.asarray(tp)
    if not hidden:
        return np.full(tp.shape, np.inf)
    row = int(np.floor(np.log2(hidden))) - 7
    if row > 6:
        return np.zeros(tp.shape)
    lut = TRTLLM_LUT_NCCL_LOG2_TOKENS[100 if cc >= 10.0 else 90]
    out = np.full(tp.shape, np.inf)
    for g, steps in lut.items():
        out = np.where(tp == g, 2.0 ** steps[max(row, 0)] * hidden * 2.0 - 1.0, out)
    return out


def all_reduce_nccl_floor(node, engine, tp, hidden=None) -> np.ndarray:
    """Bytes above which each plan's TP all-reduce runs in NCCL (module constants per engine; TensorRT-LLM:
    the workspace bound or, lower, its lookup table's NCCL cells at the model's hidden size; the vLLM
    bound by the GPU's compute capability, sm 10.x as 10.0, older than 9.0 or ROCm: its custom 8 MiB; SGLang
    8 MiB, on an AMD GPU 16 MiB)."""
    engine, tp = np.broadcast_arrays(np.asarray(engine), np.asarray(tp))
    cc = getattr(node.gpu, "compute_capability", None) or 0.0
    trt = np.where(tp <= 2, TRTLLM_CUSTOM_AR_MAX[2], TRTLLM_CUSTOM_AR_MAX_DEFAULT)
    trt = np.minimum(trt, trtllm_lut_floor(cc, tp, hidden))
    sm = 10.0 if cc >= 10.0 else (9.0 if cc >= 9.0 else None)
    vl = np.full(tp.shape, 8 * MIB)
    for g, cap in (VLLM_SYMM_MEM_MAX[sm].items() if sm else ()):
        vl = np.where(tp == g, cap, vl)
    sg = SGLANG_CUSTOM_AR_MAX_ROCM if getattr(node.gpu, "vendor", None) == "amd" else SGLANG_CUSTOM_AR_MAX
    return np.where(engine == E.TRTLLM, trt, np.where(engine == E.VLLM, vl, sg))


# QuickReduce (engines.QUICK_REDUCE): a two-shot all-reduce (vllm csrc/quickreduce/quick_reduce_impl.cuh
# AllReduceTwoshot: every rank writes each peer's 1/n segment to it, reduces the n segments it receives, writes the
# reduced segment back to every peer), so it moves 2 (n - 1) / n of the message per rank as a ring does, but each
# element coded: per 2,048 fp16 elements (4,096 B) a tile of 1,152 B at INT4 (4-bit values + one fp16 scale per 32),
# 1,664 B at INT6, 2,176 B at INT8, 4,096 B at FP (CodecQ4 / CodecQ6 / CodecQ8 kRankTileStride, CodecFP): bytes
# moved per fp16 byte, by QUICK_REDUCE level (bf16 activations are cast to fp16 first: ROCM_QUICK_REDUCE_CAST_BF16_
# TO_FP16 default 1 in both engines).
QUICK_REDUCE_WIRE_BYTES = {"fp": 1.0, "int8": 2176 / 4096, "int6": 1664 / 4096, "int4": 1152 / 4096}
# Smallest message each level takes, fp16 kernels, by group size, in the order FP, INT8, INT6, INT4 (QuickAllReduce.
# _QR_MIN_SIZE, "based on kernel tests", the same table in vLLM's and SGLang's quick_all_reduce.py); up to qr_max_size
# (2 GiB by default), which no serving message reaches.
QUICK_REDUCE_MIN_BYTES = {2: (1 * MIB, 2 * MIB, 2 * MIB, 1 * MIB), 4: (1 * MIB, 16 * MIB, 4 * MIB, 2 * MIB),
                          8: (16 * MIB, 4 * MIB, 4 * MIB, 2 * MIB)}


def quick_reduce_floor(node, engine, tp, level) -> np.ndarray:
    """Bytes from which each plan's TP all-reduce runs QuickReduce (inf: never). vLLM tries QuickReduce first
    (CudaCommunicator.all_reduce: quick reduce, then custom all-reduce, then pynccl): from its minimum size
    (QUICK_REDUCE_MIN_BYTES) on. SGLang tries its custom all-reduce first (GroupCoordinator.all_reduce: "ca" before
    "qr"): above that kernel's bound (all_reduce_nccl_floor, 16 MiB on ROCm) and from the minimum size. level:
    engines.QUICK_REDUCE index per plan (0 none: never; a group size QuickReduce does not take: never)."""
    engine, tp, level = np.broadcast_arrays(np.asarray(engine), np.asarray(tp), np.asarray(level))
    floor = np.full(tp.shape, np.inf)
    for g, sizes in QUICK_REDUCE_MIN_BYTES.items():
        for i, size in enumerate(sizes, start=1):
            floor = np.where((tp == g) & (level == i), float(size), floor)
    above_custom = np.nextafter(all_reduce_nccl_floor(node, engine, tp), np.inf)
    floor = np.where(engine == E.SGLANG, np.maximum(floor, above_custom), floor)
    return np.where(engine == E.TRTLLM, np.inf, floor)


# Largest speedup of QuickReduce over RCCL AMD measured, at 1 GB messages with its fastest codec (FP4; INT4 "comparable,
# FP4 marginally faster"), by group size, on MI355X: 4.14x at TP2, 3.43x at TP4, 1.52x at TP8 (AMD ROCm blog
# "QuickReduce FP4 Quantization and Benchmarking on MI355", 2026-05-20, ROCm/rocm-blogs blogs/artificial-intelligence/
# quick-reduce-2/README.md, "Key Observations"). At TP2 / TP4 the coded bytes explain it (INT4 moves 0.28x the bytes);
# at TP8 the kernel gains far less ("increased coordination overhead with more GPUs"), so no codec is timed faster
# than 1 / this speedup of the link model's time. TRANSFERRED to MI300X / MI325X (their TP8 ratios not read here).
QUICK_REDUCE_MAX_SPEEDUP = {2: 4.14, 4: 3.43, 8: 1.52}


def quick_reduce_wire_ratio(level, tp) -> np.ndarray:
    """Time of a QuickReduce all-reduce per unit of the link model's fp16 time, per plan: the level's
    QUICK_REDUCE_WIRE_BYTES, but no less than 1 / QUICK_REDUCE_MAX_SPEEDUP at the plan's group size (1.0 for none,
    which quick_reduce_floor never selects)."""
    names = E.QUICK_REDUCE
    level, tp = np.broadcast_arrays(np.asarray(level, dtype=int), np.asarray(tp))
    wire = np.array([1.0] + [QUICK_REDUCE_WIRE_BYTES[n] for n in names[1:]])[level]
    floor = np.ones(tp.shape)
    for g, speedup in QUICK_REDUCE_MAX_SPEEDUP.items():
        floor = np.where(tp == g, 1.0 / speedup, floor)
    return np.maximum(wire, floor)


def gather_is_nccl(engine) -> np.ndarray:
    """Attention-DP MoE all-gather / reduce-scatter in NCCL: TensorRT-LLM (tensorrt_llm/_torch/distributed/
    ops.py allgather / reducescatter, NCCL ops) and vLLM (all2all backend allgather_reducescatter, pynccl
    all_gatherv / reduce_scatterv). SGLang's DP-attention gather (sglang/srt/layers/dp_attention.py) runs either an
    all-reduce of the zero-padded global buffer (SUM_LEN) or a reduce-scatter + all-gather at the longest rank's
    length (MAX_LEN), sizes this model does not carry: SGLang keeps the comm model there."""
    engine = np.asarray(engine)
    return (engine == E.TRTLLM) | (engine == E.VLLM)
