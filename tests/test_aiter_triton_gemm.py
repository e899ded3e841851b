"""SGLang 0.5.6-0.5.9 on gfx942 (MI300X / MI325X) runs its block-FP8 dense GEMMs through aiter's Triton kernel with
the default 128 x 128 tile and no split-K (planner.serve.aiter_triton_gemm): K / 128 sequential steps per GEMM,
flat in the batch up to 128 rows, charged beyond the roofline; nowhere else."""

import numpy as np

from planner import catalog
from planner.serve import aiter_triton_gemm as ATG
from planner.serve import engines as E
from planner.serve.memory import model_facts
from planner.serve.plan import parse_serve_plan
from planner.serve.search import estimate_serving

from conftest import serving_point

MI300X_C4 = "inferencex-sglang-mi300x-dsr1-tp8-ep1-fp8-1024-1024-c4"
H200_C4 = "inferencex-sglang-h200-dsr1-tp8-ep1-fp8-1024-1024-c4"


def test_deepseek_shapes_at_tp8_are_the_ones_aiter_tunes_for_gfx942():
    """The fused q_a + kv_a projection (replicated), q_b, o_proj and the dense layers' MLP; at TP8 they are the
    (N, K) of aiter's gfx942 DeepSeek configs (gfx942-GEMM-A8W8_BLOCKSCALE-N=2112-K=7168 / N=3072-K=1536 /
    N=7168-K=2048, ROCm/aiter PR 2024); no expert, shared-expert, router or kv_b GEMM."""
    shapes = ATG.block_gemm_shapes(catalog.model("deepseek-v3"))
    tp = 8
    nk = set()
    for moe, k, n, split in shapes:
        n_r = n // tp if split.endswith("col") else n
        k_r = k // tp if split.endswith("row") else k
        nk.add((moe, n_r, k_r))
    assert nk == {(True, 2112, 7168), (True, 3072, 1536), (True, 7168, 2048),
                  (False, 2112, 7168), (False, 3072, 1536), (False, 7168, 2048), (False, 4608, 7168),
                  (False, 7168, 2304)}


def test_only_sglang_056_to_059_with_block_fp8_on_gfx942():
    wq = E.WEIGHT_NAMES.index("fp8-block")
    t = {"engine": np.array([E.SGLANG] * 5 + [E.VLLM, E.SGLANG]),
         "wq": np.array([wq] * 6 + [E.WEIGHT_NAMES.index("fp8")]),
         "engine_version": np.array([E.version_code(v) for v in ("0.5.9", "0.5.6", "0.5.5", "0.5.10")]
                                    + [E.PINNED_VERSION, E.version_code("0.5.9"), E.version_code("0.5.9")])}
    assert ATG.applies(t, "mi300x").tolist() == [True, True, False, False, False, False, False]
    assert ATG.applies(t, "mi325x")[0]
    assert not ATG.applies(t, "h200-sxm-141gb").any()
    assert not ATG.applies(t, "mi355x").any()


def test_flat_in_the_batch_to_one_row_tile_then_a_second_wave():
    f = model_facts(catalog.model("deepseek-v3"))
    gpu = catalog.gpu("mi300x")
    bw, lin = gpu.hbm_tb_s * 1e12 * 0.8, 1e15
    excess = lambda rows: float(ATG.default_tile_excess_s(f, f.layers, rows, 8, 8, lin, bw, 1.0, 304, True))  # noqa: E731
    e1, e4, e64, e128 = (excess(r) for r in (1, 4, 64, 128))
    assert e1 == e4 and abs(e64 - e4) < 0.05 * e4 and abs(e128 - e4) < 0.1 * e4  # only the roofline moves
    # K-steps of one layer: MoE layers 56 + 12 + 16, dense layers also 56 + 18 (MLP); ~1.96 us each
    steps = f.moe_layers * (56 + 12 + 16) + (f.layers - f.moe_layers) * (56 + 12 + 16 + 56 + 18)
    assert 0.9 * steps * ATG.K_STEP_S < e4 < steps * ATG.K_STEP_S
    # 4,096 rows: o_proj's 32 x 56 tiles need 6 waves of the 304 CUs, so the kernel time is no longer flat
    assert excess(4096) > e4
    assert float(ATG.default_tile_excess_s(f, f.layers, 4, 8, 8, lin, bw, 1.0, 304, False)) == 0.0


def test_mi300x_sglang_059_decode_step_pays_it_and_h200_does_not():
    sc, plan, _ = serving_point(MI300X_C4)
    assert "engine_version=0.5.9" in plan
    old, new = (estimate_serving(sc, parse_serve_plan(p, sc))
                for p in (plan, plan.replace("engine_version=0.5.9", "engine_version=0.5.10")))
    gap_ms = old["latency"]["tpot_ms"]["p50"] - new["latency"]["tpot_ms"]["p50"]
    assert 9.0 < gap_ms < 11.0  # ~5,350 K-steps x 1.96 us, less the rooflines
    sc_h, plan_h, _ = serving_point(H200_C4)
    a, b = (estimate_serving(sc_h, parse_serve_plan(p, sc_h))
            for p in (plan_h, plan_h.replace("engine_version=0.5.9", "engine_version=0.5.10")))
    assert a["latency"]["tpot_ms"]["p50"] == b["latency"]["tpot_ms"]["p50"]
