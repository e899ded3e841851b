from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Purchase files (planner compare) are not scenarios; tests/test_purchase.py runs them.
SCENARIOS = sorted(p for p in (ROOT / "scenarios").glob("*.yaml") if not p.name.startswith(("purchases", "serve")))
HF = ROOT / "tests" / "fixtures" / "hf"


@pytest.fixture(scope="session")
def scenario_32b():
    from planner import load_scenario

    return load_scenario(ROOT / "scenarios" / "32b_16gpu.yaml")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p
