"""Fuzz the command line: generated scenarios, purchase files, plan strings, Hugging Face configs,
output paths and options through every command, in process (click's CliRunner, no subprocess).

    python benchmarks/fuzz.py [--cases 2000] [--seed 0] [--limit 60] [--out benchmarks/fuzz_results.md]

Each case is tests/fuzz_cases.py's `make_case` in a fresh folder. A run passes when it ends with exit
code 0, 1 or 2, prints no traceback, and an exit-2 message names the key, file or option at fault; a
run longer than --limit seconds is stopped (SIGALRM) and counted as a hang. Failing cases are printed
with their arguments and seed, so `--seed S --cases 1 --first N` reruns one.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from click.testing import CliRunner  # noqa: E402

from fuzz_cases import check_result, make_case  # noqa: E402
from planner.cli import main  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_case(seed: int, index: int, limit: float) -> dict:
    """Generate case `index` of `seed` in a temporary folder, run it, and judge it."""
    rng = random.Random(f"{seed}-{index}")
    with tempfile.TemporaryDirectory(prefix="planner-fuzz-") as tmp:
        args, touched = make_case(rng, Path(tmp))
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        start = time.perf_counter()
        try:
            r = CliRunner().invoke(main, args)
            code, output, exc = r.exit_code, r.output, r.exception
            if isinstance(exc, Hang):
                code, problem = None, f"hang > {limit:g} s"
            else:
                problem = check_result(args, touched, code, output, exc)
        except Hang:
            code, output, problem = None, "", f"hang > {limit:g} s"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        seconds = time.perf_counter() - start
    return {"index": index, "command": args[0], "args": args, "touched": touched, "exit": code,
            "seconds": seconds, "problem": problem, "output": output[-600:]}


def main_cli(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first", type=int, default=0, help="index of the first case")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds before a run counts as a hang")
    ap.add_argument("--out", type=Path, help="also write the summary as Markdown")
    a = ap.parse_args(argv)
    exits, commands, failures, slowest = collections.Counter(), collections.Counter(), [], []
    start = time.perf_counter()
    for i in range(a.first, a.first + a.cases):
        r = run_case(a.seed, i, a.limit)
        exits[r["exit"]] += 1
        commands[r["command"]] += 1
        slowest = sorted(slowest + [(r["seconds"], i, r["args"][0])], reverse=True)[:5]
        if r["problem"]:
            failures.append(r)
            print(f"FAIL case {i}: {r['problem']}: {r['args']}\n  touched {r['touched']}\n  {r['output'][-400:]}",
                  flush=True)
    total = time.perf_counter() - start
    tracebacks = sum(1 for f in failures if "exception" in f["problem"] or "traceback" in f["problem"])
    hangs = sum(1 for f in failures if f["problem"].startswith("hang"))
    lines = [f"# CLI fuzz: {a.cases} generated cases, seed {a.seed}", "",
             f"- total {total:.0f} s, {total / max(a.cases, 1):.2f} s per case; slowest: "
             + ", ".join(f"case {i} ({c}) {s:.1f} s" for s, i, c in slowest),
             f"- commands: " + ", ".join(f"{k} {v}" for k, v in sorted(commands.items())),
             f"- exit codes: " + ", ".join(f"{k} {v}" for k, v in sorted(exits.items(), key=str)),
             f"- tracebacks/unexpected exceptions: {tracebacks}; hangs over {a.limit:g} s: {hangs}; "
             f"other failed properties: {len(failures) - tracebacks - hangs}"]
    print("\n".join(lines))
    if a.out:
        a.out.write_text("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main_cli())
