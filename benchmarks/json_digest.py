"""Digest of every shipped and benchmark scenario's output, to check that a speed change is exact.

    python benchmarks/json_digest.py [--text] [--only NAME ...] > digests.txt

Runs `python -m planner solve X --json` for every training scenario of scenarios/, benchmarks/scenarios/
and benchmarks/report_scenarios/, `compare X --json` for purchase files and `serve X --json` for serving
scenarios, and prints one md5 per output with every `"seconds": <number>` (the run's own duration)
blanked (and in tables, the header that ends with the duration). `--text` also digests the table output (the same commands without --json). Two runs of the
same code print the same lines; a change that alters any result changes a line.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRS = [ROOT / "scenarios", ROOT / "benchmarks" / "scenarios", ROOT / "benchmarks" / "report_scenarios"]
SECONDS = re.compile(rb'"seconds": *-?[0-9.eE+-]+|searches, [0-9.]+ s[^\n]*')  # JSON; compare's table header


def command(path: Path) -> str:
    """The planner command that answers PATH: compare for purchase files, serve for serving scenarios."""
    text = path.read_text()
    if re.search(r"^(options|clusters):", text, re.M):
        return "compare"
    if re.search(r"^serving:", text, re.M) or path.name.startswith("serve"):
        return "serve"
    return "solve"


def digest(path: Path, as_json: bool) -> tuple[str, int]:
    args = [sys.executable, "-m", "planner", command(path), str(path)] + (["--json"] if as_json else [])
    proc = subprocess.run(args, cwd=ROOT, capture_output=True)
    out = SECONDS.sub(b'"seconds": 0', proc.stdout)
    table = None if as_json else re.search(rb"\n *# ", out)
    if table:  # solve's header, above the table's column names, ends with the seconds (and wraps with them)
        out = out[table.start():]
    return hashlib.md5(out).hexdigest(), proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", action="store_true", help="also digest the table output")
    ap.add_argument("--only", nargs="*", help="scenario file names to run (default: all)")
    a = ap.parse_args()
    for d in DIRS:
        for path in sorted(d.glob("*.yaml")):
            if a.only and path.name not in a.only and path.stem not in a.only:
                continue
            for as_json in [True] + ([False] if a.text else []):
                h, rc = digest(path, as_json)
                print(f"{path.relative_to(ROOT)} {'json' if as_json else 'text'} rc={rc} {h}", flush=True)


if __name__ == "__main__":
    main()
