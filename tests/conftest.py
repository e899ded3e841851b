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


# A tiny model and the smallest serving / training scenarios around it, for CLI tests that write their own files.
TINY = {"name": "tiny", "layers": 4, "hidden": 512, "heads": 8, "kv_heads": 2, "ffn_hidden": 1536, "vocab": 32000}
TINY_SERVE = {"name": "s", "model": TINY, "cluster": {"node": "dgx-h100", "nodes": 1},
              "serving": {"input_tokens": 1024, "output_tokens": 256, "requests_per_s": 5},
              "search": {"engines": ["vllm"], "weights": ["bf16"], "kv_cache": ["fp8"]}}
TINY_TRAIN = {"name": "t", "model": TINY, "cluster": {"node": "dgx-h100", "nodes": 1},
              "training": {"seq_len": 2048, "global_batch": 32, "tokens": 1.0e9}}


def write_yaml(tmp_path, data, name="s.yaml"):
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def serve_70b_with(tmp_path, traffic: dict):
    """(scenario, path) of scenarios/serve_70b.yaml with 1,024 / 1,024 tokens and the given traffic keys."""
    import yaml

    from planner.spec.serving import load_serving_scenario

    data = yaml.safe_load((ROOT / "scenarios" / "serve_70b.yaml").read_text())
    data["serving"] = {"input_tokens": 1024, "output_tokens": 1024, **traffic}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_serving_scenario(path), path


# Closed forms of the M/M/1 waiting time (Kleinrock 1975, Vol. 1, Sec. 3.2), P(W > t) = rho exp(-mu (1 - rho) t):
# the reference the planner's queues (timing.mg1_wait_quantile, evaluate.closed_loop_wait_quantile) reduce to.
def mm1_wait_quantile(lam, mu, q: float):
    """q-quantile of the M/M/1 waiting time; 0 when rho <= 1 - q, inf when unstable."""
    import numpy as np

    rho = lam / np.maximum(mu, 1e-30)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(np.maximum(rho, 1e-30) / (1 - q)) / (mu * (1 - rho))
    return np.where(rho >= 1, np.inf, np.where(rho <= 1 - q, 0.0, t))


def mm1_within(lam, mu, t):
    """P(W <= t) in M/M/1; 0 when unstable."""
    import numpy as np

    rho = lam / np.maximum(mu, 1e-30)
    decay = mu * np.maximum(1 - rho, 0.0) * np.maximum(t, 0)
    return np.where(rho >= 1, 0.0, np.where(t < 0, 0.0, 1 - rho * np.exp(-decay)))


# A purchase file's serving workload (planner compare): Llama-3.1-8B chat at 20 requests/s on vLLM, fp8.
CHAT_8B_WORKLOADS = """serving_workloads:
  - name: chat-8b
    model: llama-3.1-8b
    serving: {input_tokens: 1024, output_tokens: 256, requests_per_s: 20}
    search: {engines: [vllm], weights: [fp8], kv_cache: [fp8]}
    hours_per_year: 4000
"""


def serving_point(key: str):
    """(scenario, plan, measured) of benchmarks/serving_runs.yaml's point `key`, read as serving_accuracy.run reads
    it (the model's native weight format carried into the precision block)."""
    import serving_accuracy as S
    import yaml

    rows = {r["id"]: r for r in yaml.safe_load((ROOT / "benchmarks" / "serving_runs.yaml").read_text())}
    r = rows[key]
    r["precision"]["native_weight_format"] = r["model"].get("native_weight_format")
    return S.point_scenario(r)
