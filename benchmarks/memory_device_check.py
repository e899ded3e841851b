"""Peak memory of real PyTorch training steps on one GPU, for comparison with the planner's memory model.

    python benchmarks/memory_device_check.py [--out FILE]

Runs a small Llama-shaped decoder (LayerNorm without bias, multi-head attention through
scaled_dot_product_attention with the flash backend, SwiGLU or GeLU MLP, untied embedding and
output layer) under a Megatron-style mixed-precision layout: bf16 parameters, a full fp32 gradient
buffer (`main_grad`, filled by post-accumulate-grad hooks as Megatron-LM's DDP does), fp32 master
weights and fused AdamW moments (18 bytes per parameter). Each configuration runs three optimizer
steps; per configuration it records, in bytes:
  states          memory_allocated after the first step (weights, gradient buffer, master, moments)
  after_forward   memory_allocated after the loss, minus `states` (stored activations + loss)
  peak_allocated  torch.cuda.max_memory_allocated over steps 2 and 3
  peak_reserved   torch.cuda.max_memory_reserved over steps 2 and 3 (what the caching allocator held)
  non_torch       driver-used memory outside PyTorch's pool (CUDA context, cuBLAS, ...)
Recompute modes: none; full (torch.utils.checkpoint around every block); tt_sac (torchtitan's
op-level selective checkpointing policy: save matmul outputs except every second one, and the
attention op's outputs; torchtitan/distributed/activation_checkpoint.py).
Run it once per allocator setting (PYTORCH_CUDA_ALLOC_CONF unset, and expandable_segments:True).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL = dict(layers=8, hidden=4096, heads=32, head_dim=128, vocab=128256)
FFN = {"swiglu": 14336, "gelu": 16384}
CONFIGS = [  # (name, ffn activation, recompute, micro-batch, sequence length)
    ("swiglu-none-mbs1-s4096", "swiglu", "none", 1, 4096),
    ("swiglu-full-mbs1-s4096", "swiglu", "full", 1, 4096),
    ("swiglu-none-mbs2-s4096", "swiglu", "none", 2, 4096),
    ("swiglu-none-mbs1-s8192", "swiglu", "none", 1, 8192),
    ("gelu-none-mbs1-s4096", "gelu", "none", 1, 4096),
    ("swiglu-ttsac-mbs1-s4096", "swiglu", "tt_sac", 1, 4096),
    ("swiglu-full-mbs2-s8192", "swiglu", "full", 2, 8192),
]


def write_json(path: str, data: dict, indent: int | None = None) -> None:
    """Write `data` as JSON to path through a temporary file and a rename (a partial run leaves a whole file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=indent)
    os.replace(tmp, path)


class Block(nn.Module):
    def __init__(self, h, heads, d, f, act):
        super().__init__()
        self.heads, self.d, self.act = heads, d, act
        self.n1 = nn.LayerNorm(h, bias=False)
        self.wq = nn.Linear(h, heads * d, bias=False)
        self.wk = nn.Linear(h, heads * d, bias=False)
        self.wv = nn.Linear(h, heads * d, bias=False)
        self.wo = nn.Linear(heads * d, h, bias=False)
        self.n2 = nn.LayerNorm(h, bias=False)
        self.w1 = nn.Linear(h, f, bias=False)
        self.w3 = nn.Linear(h, f, bias=False) if act == "swiglu" else None
        self.w2 = nn.Linear(f, h, bias=False)

    def forward(self, x):
        b, s, _ = x.shape
        y = self.n1(x)
        q, k, v = (w(y).view(b, s, self.heads, self.d).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(a.transpose(1, 2).reshape(b, s, -1))
        y = self.n2(x)
        hdn = F.silu(self.w1(y)) * self.w3(y) if self.act == "swiglu" else F.gelu(self.w1(y))
        return x + self.w2(hdn)


def tt_sac_context():
    """torchtitan's op-level SAC policy: save mm outputs except every second one, and SDPA's outputs."""
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    save = {torch.ops.aten.mm.default, torch.ops.aten._scaled_dot_product_flash_attention.default,
            torch.ops.aten._scaled_dot_product_efficient_attention.default,
            torch.ops.aten._scaled_dot_product_cudnn_attention.default}
    meta = {"forward": 0, "recompute": 0}

    def policy(ctx, func, *args, **kwargs):
        mode = "recompute" if ctx.is_recompute else "forward"
        if func == torch.ops.aten.mm.default:
            meta[mode] += 1
        if func in save and not (func == torch.ops.aten.mm.default and meta[mode] % 2 == 0):
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


class Model(nn.Module):
    def __init__(self, act, recompute):
        super().__init__()
        m = MODEL
        self.recompute = recompute
        self.emb = nn.Embedding(m["vocab"], m["hidden"])
        self.blocks = nn.ModuleList(Block(m["hidden"], m["heads"], m["head_dim"], FFN[act], act)
                                    for _ in range(m["layers"]))
        self.norm = nn.LayerNorm(m["hidden"], bias=False)
        self.head = nn.Linear(m["hidden"], m["vocab"], bias=False)

    def forward(self, tokens, targets):
        from torch.utils.checkpoint import checkpoint

        x = self.emb(tokens)
        for blk in self.blocks:
            if self.recompute == "full":
                x = checkpoint(blk, x, use_reentrant=False)
            elif self.recompute == "tt_sac":
                x = checkpoint(blk, x, use_reentrant=False, context_fn=tt_sac_context)
            else:
                x = blk(x)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def megatron_states(model):
    """Megatron-LM's mixed-precision layout on the model's device: a full fp32 `main_grad` buffer per
    parameter (filled by post-accumulate-grad hooks, as its DDP does), fp32 master weights and fused
    AdamW over them. Returns (bf16 parameters, fp32 masters, optimizer)."""
    params = list(model.parameters())
    for p in params:  # Megatron-LM DDP: gradients accumulate into a full fp32 main_grad buffer
        p.main_grad = torch.zeros(p.shape, dtype=torch.float32, device=p.device)

        def hook(p):
            p.main_grad.add_(p.grad)
            p.grad = None
        p.register_post_accumulate_grad_hook(hook)
    master = [p.detach().float().clone() for p in params]
    for m, p in zip(master, params):
        m.grad = p.main_grad
    opt = torch.optim.AdamW(master, lr=1e-5, fused=True)
    return params, master, opt


def megatron_model(act, recompute, dev):
    """The seeded bf16 model on `dev` in Megatron's state layout: (model, bf16 parameters, fp32 masters,
    optimizer) as megatron_states returns them."""
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(dev):
        model = Model(act, recompute)
    torch.set_default_dtype(torch.float32)
    return (model, *megatron_states(model))


def optimizer_step(params, master, opt):
    """Megatron's optimizer phase: the fused AdamW step on the fp32 masters, the masters copied into the
    bf16 weights, the fp32 gradient buffer zeroed."""
    opt.step()
    with torch.no_grad():
        for m, p in zip(master, params):
            p.copy_(m)
            p.main_grad.zero_()


def run_config(name, act, recompute, mbs, seq):
    model, params, master, opt = megatron_model(act, recompute, "cuda")
    n_params = sum(p.numel() for p in params)
    tokens = torch.randint(0, MODEL["vocab"], (mbs, seq), device="cuda")
    targets = torch.randint(0, MODEL["vocab"], (mbs, seq), device="cuda")
    out = {"name": name, "act": act, "recompute": recompute, "mbs": mbs, "seq": seq, "params": n_params}

    def step(record):
        loss = model(tokens, targets)
        if record:
            torch.cuda.synchronize()
            out["after_forward"] = torch.cuda.memory_allocated() - out["states"]
        loss.backward()
        optimizer_step(params, master, opt)

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
    del model, opt, master, params, tokens, targets
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
           "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""), "model": MODEL, "ffn": FFN, "runs": []}
    for cfg in CONFIGS:
        if args.only and cfg[0] not in args.only:
            continue
        try:
            r = run_config(*cfg)
        except Exception as e:  # record and go on: one failing configuration must not lose the others
            r = {"name": cfg[0], "error": f"{type(e).__name__}: {e}"[:300]}
        res["runs"].append(r)
        print(json.dumps(r), flush=True)
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    text = json.dumps(res, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
