"""The README's headline accuracy figures are the committed reports' (benchmarks/serving_accuracy.md,
benchmarks/accuracy_with_recipes.md): a report regenerated without the README following shows here."""

import re

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def _one(pattern: str, text: str) -> tuple:
    found = re.findall(pattern, text)
    assert len(found) == 1, (pattern, found)
    return found[0]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_serving_figures_are_the_serving_report():
    md = (ROOT / "benchmarks" / "serving_accuracy.md").read_text()
    mean, n = _one(r"Mean absolute error: ([\d.]+)% over (\d+) points", md)
    readme = _flat(README)
    assert _one(r"\((\d+) points: ([\d.]+)%; [\d.]+% over the \d+ without", readme) == (n, mean)
    assert _one(r"Accuracy against (\d+) published points", readme) == n
    earlier = _one(r"\| points of earlier rounds \| ([\d.]+)% \((\d+)\) \|", md)
    assert _one(r"the (\d+) TensorRT-LLM / MLPerf / NIM points ([\d.]+)% mean absolute", readme) == earlier[::-1]
    fp4 = _one(r"\| dense FP4 \| ([\d.]+)% \((\d+)\) \|", md)
    assert _one(r"dense FP4 on Blackwell ([\d.]+)% over (\d+)", readme) == fp4


def test_training_figures_are_the_recipe_report():
    md = (ROOT / "benchmarks" / "accuracy_with_recipes.md").read_text()
    runs = _one(r"\((\d+) runs, \d+ estimated\)", md)
    mean = _one(r"\*\*All runs: mean absolute error ([\d.]+)%", md)
    families = md.split("\n## Per family", 1)[1]  # its first table: every run
    fam = [re.search(r"\| megatron MoE " + p + r" \| \d+ of \d+ \| ([\d.]+)% \|", families).group(1)
           for p in ("bf16", "fp8")]
    got = _one(r"Tokens/s over the (\d+) runs with a throughput \(calibration included\): ([\d.]+)%; megatron MoE "
               r"bf16 ([\d.]+)% \(.*?\), MoE fp8 ([\d.]+)% \(", _flat(README))
    assert got == (runs, mean, *fam)
