"""Serving scenario: model + cluster + traffic (`serving:`) + serving search keys (PRODUCT.md, Serving).

A scenario file holds either a `training:` block (planner.spec.scenario) or a `serving:` block
(this module), never both. Token counts are an integer, a `{mean, p90}` pair or a list of
`[tokens, share]` points.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from planner.errors import InputError
from planner.spec.base import Name, PosFloat, PosInt, Strict
from planner.spec.hardware import Cluster
from planner.spec.model import ModelSpec

Engine = Literal["vllm", "sglang", "trtllm"]
WeightScheme = Literal["bf16", "fp16", "fp8", "int8", "nvfp4", "mxfp4", "int4-awq", "int4-gptq", "fp8-block"]
KVScheme = Literal["bf16", "fp16", "fp8"]
ServeObjective = Literal["cost", "latency", "gpus", "throughput"]
ENGINES = ("vllm", "sglang", "trtllm")
SERVE_PLAN_FIELDS = ("engine", "weights", "kv_cache", "tp", "pp", "ep", "replicas", "max_batch",
                     "max_batched_tokens")


class TokenMoments(Strict):
    mean: PosFloat = Field(le=2**24)
    p90: PosFloat = Field(le=2**24)

    @model_validator(mode="after")
    def _check(self):
        if self.p90 < self.mean:
            raise ValueError(f"p90 ({self.p90}) is below the mean ({self.mean})")
        if self.mean <= 0.1 * self.p90:
            raise ValueError(f"the mean ({self.mean:g}) must be above p90 / 10 ({self.p90 / 10:g}): a tenth of the "
                             "counts are at least p90, so counts >= 0 average more than that")
        return self


def _pairs_only(value):
    """A list of token counts holds [tokens, share] pairs; say so for any other item (a {tokens, share}
    mapping, a bare number, a triple) instead of pydantic's 'Input should be a valid tuple'."""
    if isinstance(value, list):
        if not value:
            raise ValueError("the list of [tokens, share] pairs is empty")
        for i, item in enumerate(value):
            if isinstance(item, (list, tuple)) and len(item) == 2:
                continue
            hint = ""
            if isinstance(item, dict) and set(item) == {"tokens", "share"}:
                hint = f" (write {{tokens: {item['tokens']}, share: {item['share']}}} as [{item['tokens']}, {item['share']}])"
            raise ValueError(f"item {i} is {item!r}: a list of token counts takes [tokens, share] pairs, e.g. "
                             f"[[512, 0.5], [4096, 0.5]]{hint}; or give an integer, or {{mean, p90}}")
    return value


# A share is a relative weight (normalised by the sum); bounded so that sums stay finite.
TokenCount = Annotated[Annotated[PosInt, Field(le=2**24)] | TokenMoments
                       | Annotated[list[tuple[Annotated[PosInt, Field(le=2**24)], Annotated[PosFloat, Field(le=1e6)]]],
                                   Field(min_length=1, max_length=10_000)], BeforeValidator(_pairs_only)]


def token_stats(value) -> tuple[float, float]:
    """(mean, p90) of a token count given as an int, {mean, p90} or a list of (tokens, share)."""
    if isinstance(value, int):
        return float(value), float(value)
    if isinstance(value, TokenMoments):
        return value.mean, value.p90
    pts = sorted(value)
    total = sum(s for _, s in pts)
    return sum(t * s for t, s in pts) / total, token_quantile(value, 0.9)


def token_quantile(value, q: float) -> float:
    """The q-quantile of a token count, q >= 0.9: the count itself where fixed; p90 for {mean, p90} (its
    least-spread reading, token_moments, puts the top tenth at p90 itself, so every quantile from 0.9 up is
    p90); for a list of (tokens, share) the least count whose cumulative share reaches q."""
    if isinstance(value, int):
        return float(value)
    if isinstance(value, TokenMoments):
        return value.p90
    pts = sorted(value)
    total = sum(s for _, s in pts)
    acc = 0.0
    for t, s in pts:
        acc += s / total
        if acc >= q - 1e-12:
            return float(t)
    return float(pts[-1][0])


def token_points(value) -> list[tuple[float, float]]:
    """(tokens, share) points of a token count, shares summing to 1: the count itself where fixed, the list's
    points, and for {mean, p90} its least-spread two-point reading (token_moments)."""
    pts = _points(value)
    total = sum(s for _, s in pts)
    return [(t, s / total) for t, s in pts]


def _points(value) -> list[tuple[float, float]]:
    """(tokens, relative weight) points of a token count, weights not normalised (token_points, token_moments)."""
    if isinstance(value, int):
        return [(float(value), 1.0)]
    if isinstance(value, TokenMoments):
        return [((value.mean - 0.1 * value.p90) / 0.9, 0.9), (float(value.p90), 0.1)]
    return [(float(t), float(s)) for t, s in value]


def token_moments(value, k: int = 4) -> tuple[float, ...]:
    """(E[t], E[t^2], ..., E[t^k]) of a token count given as an int (that count), a list of (tokens, share)
    (its points), or {mean, p90}. A {mean, p90} pair states the mean and that a tenth of the counts are at
    least p90, not the shape: its moments are those of the least spread distribution with both facts, the
    tenth at p90 itself and the rest at one count a = (mean - p90 / 10) / 0.9 (within the upper and within
    the lower group, any spread around the group's mean adds variance; the upper group's mean is at least
    p90): a contraction of any other, so for a cost convex in the count (a prompt's prefill) it gives the least
    E[S] and E[S^2], and the least Pollaczek-Khinchine mean wait, that the pair allows; a fixed count where
    p90 = mean. A list of points states the whole shape."""
    pts = _points(value)
    total = sum(s for _, s in pts)
    return tuple(sum(t ** j * s for t, s in pts) / total for j in range(1, k + 1))


def length_biased_mean(value) -> float:
    """Mean token count of a request picked in proportion to its count, E[t^2] / E[t]: what a
    sequence in flight holds when lengths vary. A decode step samples the running sequences, and a
    request stays in flight for as many steps as it has output tokens, so its output length is
    length-biased (length-biased sampling, the inspection or waiting-time paradox of renewal theory;
    Feller, An Introduction to Probability Theory and Its Applications, vol. 2); likewise a prefill token
    picked at random belongs to a prompt in proportion to the prompt's length. The moments are
    token_moments': the count itself where fixed, and for {mean, p90} its least-spread two-point reading
    (a pair with p90 above the mean states some spread, and that reading gives the least E[t^2] it allows)."""
    m1, m2 = token_moments(value, 2)
    return m2 / m1 if m1 > 0 else 0.0


class SLO(Strict):
    """Latency targets at the 90th and / or the 99th percentile (MLPerf Server states p99 bounds)."""
    ttft_ms_p90: PosFloat | None = None
    tpot_ms_p90: PosFloat | None = None
    ttft_ms_p99: PosFloat | None = None
    tpot_ms_p99: PosFloat | None = None

    @model_validator(mode="after")
    def _check(self):
        for what in ("ttft", "tpot"):
            p90, p99 = getattr(self, f"{what}_ms_p90"), getattr(self, f"{what}_ms_p99")
            if p90 is not None and p99 is not None and p99 < p90:
                raise ValueError(f"{what}_ms_p99 ({p99:g}) is below {what}_ms_p90 ({p90:g}): the 99th percentile "
                                 "is never below the 90th")
        return self

    def targets(self):
        """(kind, quantile key, target ms) of every target set, TPOT first: kind tpot / ttft, key p90 / p99."""
        return [(w, q, getattr(self, f"{w}_ms_{q}")) for w in ("tpot", "ttft") for q in ("p90", "p99")
                if getattr(self, f"{w}_ms_{q}") is not None]


class Serving(Strict):
    input_tokens: TokenCount
    output_tokens: TokenCount
    requests_per_s: PosFloat | None = Field(None, le=1e7)
    concurrency: PosInt | None = Field(None, le=10**7)
    offline: bool = False
    slo: SLO = SLO()
    prefix_cache_hit: float = Field(0.0, ge=0.0, lt=1.0, description="share of input tokens already cached")

    @model_validator(mode="after")
    def _check(self):
        given = [k for k in ("requests_per_s", "concurrency") if getattr(self, k) is not None] \
            + (["offline"] if self.offline else [])
        if len(given) != 1:
            raise ValueError("give exactly one of requests_per_s, concurrency or offline: true"
                             + (f" (got {', '.join(given)})" if given else ""))
        for key in ("input_tokens", "output_tokens"):
            v = getattr(self, key)
            if isinstance(v, list) and not v:
                raise ValueError(f"{key}: the list of [tokens, share] points is empty")
        return self

    @property
    def mode(self) -> str:
        return "offline" if self.offline else ("rate" if self.requests_per_s is not None else "concurrency")

    def slo_targets(self):
        """slo.targets() that this traffic is held to: TTFT targets are not checked under offline traffic."""
        return [(k, q, t) for k, q, t in self.slo.targets() if not (k == "ttft" and self.mode == "offline")]


class ServingBudget(Strict):
    max_gpus: PosInt | None = None
    max_usd_per_hour: PosFloat | None = None


class ServingSearch(Strict):
    engines: list[Engine] = Field(default_factory=lambda: list(ENGINES), min_length=1)
    weights: list[WeightScheme] = Field(default_factory=lambda: ["bf16", "fp8", "nvfp4", "int4-awq"], min_length=1)
    kv_cache: list[KVScheme] = Field(default_factory=lambda: ["bf16", "fp8"], min_length=1)
    tp: list[PosInt] | None = None
    pp: list[PosInt] | None = None
    ep: list[PosInt] | None = None
    max_batch: list[PosInt] | None = Field(None, description="max running sequences to try; default "
                                           "each engine's default and powers of two below it")
    disaggregated: list[bool] = Field(default_factory=lambda: [False, True], min_length=1,
                                      description="colocated (false) and/or separate prefill and decode "
                                      "instances (true)")


class ServingScenario(Strict):
    name: Name = "serving scenario"
    model: ModelSpec
    cluster: Cluster
    serving: Serving
    budget: ServingBudget = ServingBudget()
    search: ServingSearch = ServingSearch()
    objective: ServeObjective = "cost"
    top: PosInt = Field(10, le=10000)

    @model_validator(mode="after")
    def _check(self):
        if not isinstance(self.cluster.nodes, int):
            raise ValueError("cluster.nodes: a serving scenario takes one node count (the GPUs available)")
        check_positions(self.model, self.serving)
        return self


def check_positions(model: ModelSpec, serving: Serving) -> None:
    """The longest request (input + output tokens: the largest count a key names, its p90 for {mean, p90})
    must fit the model's context, max_seq_len (config.json max_position_embeddings: a learned position
    table, or the context a RoPE model was published for). The engines refuse a longer limit: vLLM
    ModelConfig's _get_and_verify_max_len (vllm/config/model.py) raises on a --max-model-len above the
    derived length unless VLLM_ALLOW_LONG_MAX_MODEL_LEN is set, SGLang ModelConfig._derive_context_length
    (python/sglang/srt/configs/model_config.py) on a --context-length above it unless
    SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN is set, both warning that longer positions give wrong
    outputs. A model without a known context (max_seq_len None, as an inline model may leave it) is not
    checked. The error names serving.output_tokens where the output alone is too long, else input_tokens."""
    limit = model.max_seq_len
    if limit is None:
        return
    inp, out = _longest(serving.input_tokens), _longest(serving.output_tokens)
    if inp + out <= limit:
        return
    key = "output_tokens" if out >= limit else "input_tokens"
    what = "learned position table" if model.position == "learned" else "context"
    raise ValueError(f"serving.{key}: the longest request's input + output tokens, {inp:,.0f} (serving.input_tokens) "
                     f"+ {out:,.0f} (serving.output_tokens) = {inp + out:,.0f}, exceed the {limit:,}-token {what} of "
                     f"model '{model.name}' (max_seq_len, config.json max_position_embeddings), the most an engine "
                     "serves (vLLM --max-model-len, SGLang --context-length); shorten the requests or choose a "
                     "model with a longer context")


def _longest(value) -> float:
    """The longest token count a TokenCount names (its p90 for {mean, p90})."""
    if isinstance(value, int):
        return float(value)
    if isinstance(value, TokenMoments):
        return value.p90
    return float(max(t for t, _ in value))


def load_serving_scenario(path: str | Path) -> ServingScenario:
    """Read and validate a serving scenario (catalog names resolved); exactly one of serving/training."""
    from planner.spec.load import load_yaml, refuse_purchase_file, resolve_scenario_dict, validate_model

    p = Path(path)
    data = load_yaml(p)
    refuse_purchase_file(data, path)
    if isinstance(data, dict):
        if "serving" in data and "training" in data:
            raise InputError("a scenario has either a training: or a serving: block, not both",
                             file=str(path), key="serving")
        if "serving" not in data:
            raise InputError("required key is missing (planner serve needs a serving: block"
                             + ("; this file is a training scenario: use planner solve)" if "training" in data
                                else ")"), file=str(path), key="serving")
    sc = validate_model(ServingScenario, resolve_scenario_dict(data, p.parent, str(path)), file=str(path))
    if sc.budget.max_usd_per_hour is not None and sc.cluster.node.usd_per_gpu_hour is None:
        from planner.spec.load import PRICE_KEYS

        raise InputError(f"the price of node '{sc.cluster.node.name}' is unknown, so no plan's hourly cost can be "
                         f"compared with the budget; give it in an inline node as {PRICE_KEYS[0]} or {PRICE_KEYS[1]}, "
                         "or remove budget.max_usd_per_hour", file=str(path), key="budget.max_usd_per_hour")
    return sc
