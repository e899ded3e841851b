"""MLPerf GPT-3 175B rows of benchmarks/recipe_runs.yaml (ids mlperf3.0-* .. mlperf4.1-*gpt3*): the step per
micro-batch, published and predicted, and the same plan across submission rounds.

    python benchmarks/mlperf_gpt3_pairs.py

Per row: published and predicted step, the step per micro-batch (step / ga), the predicted compute per micro-batch,
the error, and the error if the pipeline send/recv term were hidden (a what-if for Megatron's overlap_p2p_comm, which
the MLPerf custom.yaml turns on: OVERLAP_P2P_COMM default True; the planner counts it exposed, vpp times per
micro-batch). Then pairs of rows whose plan is the same per GPU (same tp, pp, mbs, ga; vp may differ) from different
containers: the published ratio against the predicted one. Nothing is fitted; the rows and their terms come from
mlperf_train_check.model_row.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import mlperf_train_check as check  # noqa: E402

# (label, row id, row id): same tp4 pp8 mbs and ga per GPU; the container and the config's other settings differ
PAIRS = [
    ("v3.0 NVIDIA -> v3.1 NVIDIA (NeMo 23.04 -> 23.09; 768 GPUs, vp12 mbs1 ga128)",
     "mlperf3.0-nvidia-h100-fp8-gpt3-175b-768gpu", "mlperf3.1-eos-h100-fp8-gpt3-175b-768gpu"),
    ("v3.0 NVIDIA -> v3.0 CoreWeave (same container and config, 768 GPUs)",
     "mlperf3.0-nvidia-h100-fp8-gpt3-175b-768gpu", "mlperf3.0-coreweave-h100-fp8-gpt3-175b-768gpu"),
    ("v3.1 NVIDIA -> v4.0 Supermicro (23.09 mbs1 ga128 -> 24.04 mbs2 ga64, FP8 params)",
     "mlperf3.1-eos-h100-fp8-gpt3-175b-768gpu", "mlperf4.0-supermicro-h100-fp8-gpt3-175b-512gpu"),
    ("v4.0 Supermicro -> v4.1 NVIDIA (24.04 vp12 -> 24.09 vp6; mbs2 ga64)",
     "mlperf4.0-supermicro-h100-fp8-gpt3-175b-512gpu", "mlperf4.1-eos-h100-fp8-gpt3-175b-512gpu"),
    ("v3.1 NVIDIA -> v3.1 Azure (same config, 10,752 GPUs)",
     "mlperf3.1-eos-h100-fp8-gpt3-175b-10752gpu", "mlperf3.1-azure-h100-fp8-gpt3-175b-10752gpu"),
]


def gpt3_rows() -> list[dict]:
    """model_row of every MLPerf GPT-3 row, with the rows' micro-batch size."""
    out = []
    for run in check.mlperf_rows():
        if "gpt3" in run["id"]:
            m = check.model_row(run)
            m["mbs"] = run["parallel"]["micro_batch_size"]
            m["vp"] = run["parallel"]["virtual_pipeline_stages"]
            out.append(m)
    return out


def hidden_p2p_error(m: dict) -> float:
    """Tokens/s error with the pp_comm term left out of the predicted step (what-if, not the model)."""
    step = m["predicted_s"] - m["terms"].get("pp_comm", 0.0)
    return m["published_s"] / step - 1


def main() -> int:
    rows = gpt3_rows()
    print("| run | GPUs | mbs | vp | ga | published s | predicted s | published s / micro-batch | "
          "predicted compute s / micro-batch | error | error, pp_comm hidden |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in rows:
        ga = m["ga"]
        print(f"| {m['id']} | {m['gpus']} | {m['mbs']} | {m['vp']} | {ga} | {m['published_s']:.4f} | "
              f"{m['predicted_s']:.4f} | {m['published_s'] / ga:.4f} | {m['terms']['compute'] / ga:.4f} | "
              f"{m['predicted_tok'] / m['published_tok'] - 1:+.1%} | {hidden_p2p_error(m):+.1%} |")
    errs = [m["predicted_tok"] / m["published_tok"] - 1 for m in rows]
    print(f"\n{len(rows)} rows: mean absolute error {sum(map(abs, errs)) / len(errs):.1%}, "
          f"mean signed {sum(errs) / len(errs):+.1%}; pp_comm hidden: mean absolute "
          f"{sum(abs(hidden_p2p_error(m)) for m in rows) / len(rows):.1%}")
    by_id = {m["id"]: m for m in rows}
    print("\n| pair | published step per micro-batch, second / first | predicted |")
    print("|---|---:|---:|")
    for label, a, b in PAIRS:
        ma, mb = by_id[a], by_id[b]
        pub = (mb["published_s"] / mb["ga"]) / (ma["published_s"] / ma["ga"])
        pred = (mb["predicted_s"] / mb["ga"]) / (ma["predicted_s"] / ma["ga"])
        print(f"| {label} | {pub:.3f} | {pred:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
