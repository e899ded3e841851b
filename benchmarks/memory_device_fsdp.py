"""Peak memory of real torchtitan-style FSDP2 training steps on one GPU (a one-rank process group).

    python benchmarks/memory_device_fsdp.py [--out FILE]

The same decoder as benchmarks/memory_device_check.py, built in fp32 and wrapped like torchtitan:
`fully_shard` on every block and on the whole model, MixedPrecisionPolicy(param_dtype=bf16,
reduce_dtype=fp32), fused AdamW on the sharded fp32 parameters. Recompute: none, torchtitan's op-level
selective policy, or full. Records the same quantities per configuration (states, after_forward,
peak_allocated, peak_reserved, non_torch).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_device_check import MODEL, Model, tt_sac_context  # noqa: E402

CONFIGS = [
    ("fsdp-swiglu-none-mbs1-s4096", "swiglu", "none", 1, 4096),
    ("fsdp-swiglu-ttsac-mbs1-s4096", "swiglu", "tt_sac", 1, 4096),
    ("fsdp-swiglu-ttsac-mbs2-s8192", "swiglu", "tt_sac", 2, 8192),
    ("fsdp-swiglu-full-mbs2-s8192", "swiglu", "full", 2, 8192),
]


def run_config(name, act, recompute, mbs, seq):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Model(act, "none")
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for i in range(len(model.blocks)):  # torchtitan: checkpoint wrapper inside, fully_shard outside
        blk = model.blocks[i]
        if recompute == "full":
            blk = checkpoint_wrapper(blk, preserve_rng_state=False)
        elif recompute == "tt_sac":
            blk = checkpoint_wrapper(blk, preserve_rng_state=False, context_fn=tt_sac_context)
        model.blocks[i] = blk
        fully_shard(blk, mp_policy=mp, reshard_after_forward=i < len(model.blocks) - 1)
    fully_shard(model, mp_policy=mp)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    tokens = torch.randint(0, MODEL["vocab"], (mbs, seq), device="cuda")
    targets = torch.randint(0, MODEL["vocab"], (mbs, seq), device="cuda")
    out = {"name": name, "act": act, "recompute": recompute, "mbs": mbs, "seq": seq,
           "params": sum(p.numel() for p in model.parameters())}

    def step(record):
        loss = model(tokens, targets)
        if record:
            torch.cuda.synchronize()
            out["after_forward"] = torch.cuda.memory_allocated() - out["states"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    step(False)
    torch.cuda.synchronize()
    out["states"] = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(True)
    step(False)
    torch.cuda.synchronize()
    out["peak_allocated"] = torch.cuda.max_memory_allocated()
    out["peak_reserved"] = torch.cuda.max_memory_reserved()
    free, total = torch.cuda.mem_get_info()
    out["non_torch"] = total - free - torch.cuda.memory_reserved()
    del model, opt, tokens, targets
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1)
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "layout": "fsdp2",
           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""), "model": MODEL,
           "ffn": {"swiglu": 14336, "gelu": 16384}, "runs": []}
    for cfg in CONFIGS:
        try:
            r = run_config(*cfg)
        except Exception as e:  # record and go on
            r = {"name": cfg[0], "error": f"{type(e).__name__}: {e}"[:300]}
        res["runs"].append(r)
        print(json.dumps(r), flush=True)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    dist.destroy_process_group()
    text = json.dumps(res, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
