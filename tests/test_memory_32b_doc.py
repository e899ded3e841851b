"""docs/memory_32b.md quotes the planner's totals for its eight commands: they must still be what the
planner computes (re-run each command's plan and find its total in the document)."""

import re

import pytest

from planner.estimate.evaluate import estimate
from planner.spec import parse_plan
from planner.spec.load import load_scenario

from conftest import ROOT

DOC = (ROOT / "docs" / "memory_32b.md").read_text()
COMMANDS = re.findall(r'estimate (scenarios/\S+\.yaml)\s+--plan "([^"]+)"\s+# ([A-H])', DOC)


def test_the_document_lists_its_commands():
    assert len(COMMANDS) == 8


@pytest.mark.parametrize("path,plan,label", COMMANDS, ids=[c[2] for c in COMMANDS])
def test_quoted_totals_are_current(path, plan, label):
    sc = load_scenario(ROOT / path)
    total = estimate(sc, parse_plan(plan).resolved(sc))["memory"]["per_gpu_gib"]
    row = next(line for line in DOC.splitlines() if line.startswith("| **total per GPU**"))
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert cells["ABCDEFGH".index(label)].startswith(f"**{total:.1f}")
