"""How the optimizer step's bytes per framework (planner/estimate/optimizer_bytes.py) move every training run.

    python benchmarks/optimizer_bytes_compare.py [--with-recipes] [--out benchmarks/optimizer_bytes_results.md]

Re-evaluates every training run of benchmarks/accuracy.py (tokens/s per GPU) under three variants of the on-GPU
optimizer bytes, patched in memory (nothing in planner/ changes):

  flat30   the former model: 30 B per parameter of the optimizer's shard for every framework and layout
  now      the committed model (optimizer_bytes.optimizer_hbm_bytes)
  +clip    now plus gradient clipping's passes over the shard, as each framework's code runs them with its
           default clipping on: a norm read of the gradients (DeepSpeed over the 16-bit partition,
           stage_1_and_2.py scaled_global_norm; Megatron over the fp32 main grads, clip_grads.py
           get_grad_norm_fp32; torchtitan over its fp32 shards, distributed/utils.py clip_grad_norm_) and an
           in-place scale of the fp32 gradients (read 4, write 4), which DeepSpeed (unscale_and_clip_grads
           `mul_`), torchtitan (torch.nn.utils.clip_grads_with_norm_) and Megatron with Transformer Engine's
           multi_tensor_scale_tensor run unconditionally. A what-if, not adopted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402

from planner.estimate import offload, optimizer_bytes as ob  # noqa: E402
from planner.estimate.table import DS  # noqa: E402

VARIANTS = ("flat30", "now", "+clip")
FORMER_BYTES_PER_PARAM = 30.0  # the model before optimizer_bytes.py (offload.ADAM_BYTES_PER_PARAM)
GRAD_SCALE_BYTES = 8.0  # in-place scale of the fp32 gradients: read 4 + write 4 (the docstring's code paths)


def _shard(t, mem):
    return np.where(t["zero"] >= 1, mem["partition_params"], mem["local_params"])


def variant_bytes(variant: str):
    """The optimizer_hbm_bytes function of `variant`."""
    now = ob.optimizer_hbm_bytes
    if variant == "flat30":
        return lambda ctx, t, mem: _shard(t, mem) * FORMER_BYTES_PER_PARAM
    if variant == "+clip":
        def clipped(ctx, t, mem):
            norm = np.where(t["framework"] == DS, ob.grad_elem_bytes(ctx, t), ob.FP32_BYTES)
            return now(ctx, t, mem) + _shard(t, mem) * (norm + GRAD_SCALE_BYTES)
        return clipped
    return now


def predictions(files) -> dict:
    """{variant: {run id: (predicted, published, file, framework)}}."""
    runs = accuracy.training_runs(files)
    out = {}
    for v in VARIANTS:
        offload.optimizer_hbm_bytes = variant_bytes(v)
        out[v] = {}
        for r, f in runs:
            row = accuracy.evaluate(r, f)
            out[v][row["id"]] = (row["predicted"], row["published"], row["file"], row["family"]["framework"])
    offload.optimizer_hbm_bytes = ob.optimizer_hbm_bytes
    return out


def summary(rows: dict, file: str | None = None) -> str:
    e = [p / pub - 1 for p, pub, f, _ in rows.values() if p and pub and (file is None or f == file)]
    if not e:
        return "-"
    a = [abs(x) for x in e]
    return f"{100 * statistics.mean(a):.2f}% / {100 * max(a):.2f}% / {100 * statistics.mean(e):+.2f}% (n={len(e)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--with-recipes", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    files = accuracy.default_files(accuracy.DEFAULT_DIR) + (list(accuracy.RECIPE_FILES) if args.with_recipes else [])
    res = predictions(files)
    sets = sorted({f for _, _, f, _ in res["now"].values()})
    lines = ["# Optimizer step bytes per framework: every run under each variant", "",
             "`python benchmarks/optimizer_bytes_compare.py" + (" --with-recipes`" if args.with_recipes else "`")
             + " (variants: the script's docstring). Tokens/s per GPU, error = predicted / published - 1.", "",
             "| set | " + " | ".join(f"{v}: mean abs / worst / signed" for v in VARIANTS) + " |",
             "|---|" + "---:|" * len(VARIANTS)]
    for f in [None, *sets]:
        lines.append(f"| {f or 'all'} | " + " | ".join(summary(res[v], f) for v in VARIANTS) + " |")
    lines += ["", "| run | file | framework | " + " | ".join(VARIANTS) + " | now - flat30 (points) |",
              "|---|---|---|" + "---:|" * (len(VARIANTS) + 1)]
    for rid, (p, pub, f, fw) in res["now"].items():
        if not (p and pub):
            continue
        err = {v: 100 * (res[v][rid][0] / pub - 1) for v in VARIANTS}
        lines.append(f"| {rid} | {f} | {fw} | " + " | ".join(f"{err[v]:+.1f}%" for v in VARIANTS)
                     + f" | {err['now'] - err['flat30']:+.2f} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        accuracy.write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
