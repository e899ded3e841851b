"""`python -m planner ...` runs the command line (same as the `planner` script)."""

from planner.cli import run

run()
