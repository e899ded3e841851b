"""Purchase file for `planner compare`: candidate clusters (rented or owned) and the workloads to run.

```yaml
name: what to buy for 2027
clusters:
  - name: h100-cloud
    node: hgx-h100                 # catalog name | inline mapping (as a scenario's cluster.node)
    nodes: [4, 8, 16]              # a count, a list of counts or {min, max, step}
    cloud: {usd_per_gpu_hour: 2.99}          # omitted price: the catalog node's rental price
  - name: b200-owned
    node: dgx-b200
    nodes: [4, 8]
    owned: {capex_usd_per_node: 379273, power_kw: 14.3, pue: 1.58, usd_per_kwh: 0.0806,
            amortisation_years: 5, overhead_usd_per_node_year: 0}
workloads:
  - {name: dense-8b, model: llama-3.1-8b, seq_len: 8192, global_batch: 512, tokens: 1.0e12,
     weight: 1, deadline_days: 30}
serving_workloads:                 # optional: traffic to serve on the same options (planner serve)
  - name: chat-70b
    model: llama-3.1-70b
    serving: {input_tokens: 2048, output_tokens: 512, requests_per_s: 40,
              slo: {ttft_ms_p90: 800, tpot_ms_p90: 40}}
    hours_per_year: 8760           # how long the traffic runs in a year (default: all year)
```
A file holds `workloads` (training), `serving_workloads`, or both.

Defaults of the owned-cluster terms, each from a public source:
  pue 1.58                 - Uptime Institute Global Data Center Survey 2023: industry-average annual PUE.
  usd_per_kwh 0.0806       - US EIA, average retail electricity price to industrial customers, 2023
                             (8.06 cents/kWh, EIA via Statista 'US industrial retail electricity price').
  amortisation_years 5     - Amazon 2022 Form 10-K: servers depreciated over five years (Meta: 5 years
                             from Q4 2022; Microsoft and Google: 6 years).
  capex_usd_per_node, power_kw - the catalog node's `price.purchase_usd` and `power_kw`.
"""

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from planner.errors import InputError
from planner.spec.base import USD, Name, PosFloat, Strict
from planner.spec.load import is_purchase
from planner.spec.hardware import Cluster
from planner.spec.model import ModelSpec
from planner.spec.scenario import SearchOptions, Training, pinned_batch_problem
from planner.spec.serving import Serving, ServingSearch, check_positions

# A purchase budget above a quadrillion dollars is a typo; the CP-SAT solver counts money in integers.
MAX_BUDGET_USD = 1e15
# Every node count of every cluster is a plan search per workload (compare needs only each search's
# best plan: milliseconds to seconds each). The bound admits issue 14's sweep (100 clusters x 256 node
# counts, one workload) and stops files whose product of lists would run for hours.
MAX_SEARCHES = 100 * 256
DEFAULT_PUE = 1.58
DEFAULT_USD_PER_KWH = 0.0806
DEFAULT_AMORTISATION_YEARS = 5.0


class Cloud(Strict):
    """Rented by the GPU-hour; the price covers power, hosting and network."""

    usd_per_gpu_hour: USD | None = Field(None, description="None: the catalog node's rental price")


class Owned(Strict):
    """Bought: capex amortised over the hardware's life, plus energy and a yearly overhead per node."""

    capex_usd_per_node: USD | None = Field(
        None, description="None: the catalog node's purchase price (some are GPU baseboards without the host)")
    power_kw: PosFloat | None = Field(None, le=1e4, description="draw per node under load; None: the catalog's power_kw")
    pue: PosFloat = Field(DEFAULT_PUE, ge=1.0, le=5.0)
    usd_per_kwh: USD = DEFAULT_USD_PER_KWH
    amortisation_years: PosFloat = Field(DEFAULT_AMORTISATION_YEARS, le=50)
    overhead_usd_per_node_year: USD = Field(0.0, description="network, storage, hosting, support")


class ClusterOption(Cluster):
    """One candidate: a node type, the node counts to try (a count, a list or a range, as a scenario's
    cluster) and how it is paid for (cloud or owned)."""

    name: Name
    cloud: Cloud | None = None
    owned: Owned | None = None

    @model_validator(mode="after")
    def _check_pricing(self):
        if (self.cloud is None) == (self.owned is None):
            raise ValueError("give exactly one of 'cloud' (rented, $/GPU-hour) or 'owned' (capex, power, PUE, ...)")
        if self.cloud and self.usd_per_gpu_hour is None:
            raise ValueError(f"node '{self.node.name}' has no rental price in the catalog; give cloud.usd_per_gpu_hour")
        if self.owned and self.capex_usd_per_node is None:
            raise ValueError(f"node '{self.node.name}' has no purchase price in the catalog; "
                             "give owned.capex_usd_per_node")
        if self.owned and self.power_kw is None:
            raise ValueError(f"node '{self.node.name}' has no power_kw in the catalog (no source); give owned.power_kw")
        return self

    @property
    def pricing(self) -> str:
        return "cloud" if self.cloud else "owned"

    @property
    def usd_per_gpu_hour(self) -> float | None:
        if self.cloud is None:
            return None
        given = self.cloud.usd_per_gpu_hour
        return given if given is not None else self.node.usd_per_gpu_hour

    @property
    def capex_usd_per_node(self) -> float | None:
        if self.owned is None:
            return None
        given = self.owned.capex_usd_per_node
        return given if given is not None else self.node.price.purchase_usd

    @property
    def power_kw(self) -> float | None:
        if self.owned is None:
            return None
        return self.owned.power_kw if self.owned.power_kw is not None else self.node.power_kw


class Workload(Training):
    """A training job to place on every cluster option: a scenario without the cluster."""

    name: Name
    model: ModelSpec
    weight: PosFloat = Field(1.0, le=1e6, description="importance in the weighted totals and the best mix")
    deadline_days: PosFloat | None = Field(None, description="options slower than this cannot run it in the mix")
    search: SearchOptions = SearchOptions()

    @model_validator(mode="after")
    def _check_positions(self):
        from planner.spec.load import position_problem

        problem = position_problem(self.model, self.seq_len) or pinned_batch_problem(self, self.search)
        if problem:
            raise ValueError(problem)
        return self

    def training(self) -> Training:
        return Training(**{k: getattr(self, k) for k in Training.model_fields})


HOURS_PER_YEAR = 8760.0  # 365 x 24


class ServingWorkload(Strict):
    """Traffic to serve on every cluster option (a serving scenario without the cluster): the
    cheapest plan of `planner serve` on the option, priced for `hours_per_year`."""

    name: Name
    model: ModelSpec
    serving: Serving
    search: ServingSearch = ServingSearch()
    hours_per_year: PosFloat = Field(HOURS_PER_YEAR, le=HOURS_PER_YEAR)
    weight: PosFloat = Field(1.0, le=1e6)

    @model_validator(mode="after")
    def _positions(self):
        check_positions(self.model, self.serving)
        return self


class PurchaseFile(Strict):
    name: Name = "purchases"
    clusters: list[ClusterOption] = Field(min_length=1, max_length=100)
    serving_workloads: list[ServingWorkload] = Field(default_factory=list, max_length=100)
    workloads: list[Workload] = Field(default_factory=list, max_length=100, validate_default=True)
    budget_usd: PosFloat | None = Field(None, le=MAX_BUDGET_USD, description="default for --budget")

    @model_validator(mode="after")
    def _bounded(self):
        counts = sum(len(c.node_counts) for c in self.clusters)
        searches = counts * (len(self.workloads) + len(self.serving_workloads))
        if searches > MAX_SEARCHES:
            raise ValueError(f"clusters x node counts x (workloads + serving workloads) make {searches} "
                             f"plan searches; at most "
                             f"{MAX_SEARCHES} (list fewer node counts or workloads)")
        return self

    @field_validator("workloads")
    @classmethod
    def _some_work(cls, value, info):
        # serving_workloads is missing from info.data where it failed its own checks: that error says enough
        if not value and "serving_workloads" in info.data and not info.data["serving_workloads"]:
            raise ValueError("give at least one workload (training), or serving_workloads")
        return value

    @model_validator(mode="after")
    def _unique_names(self):
        names = [w.name for w in self.workloads] + [w.name for w in self.serving_workloads]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"workload names must be unique across workloads and serving_workloads; "
                             f"repeated: {', '.join(dupes)}")
        for kind in ("clusters", "workloads"):
            names = [x.name for x in getattr(self, kind)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(dupes)}")
        return self


def _resolved(data: Any, base_dir: Path, file: str) -> Any:
    """Catalog names (nodes, models) and hf_config paths replaced by their mappings; errors name the key."""
    from planner.spec.load import resolve_model, resolve_node

    if not isinstance(data, dict):
        return data
    data = dict(data)
    if isinstance(data.get("clusters"), list):
        data["clusters"] = [
            {**c, "node": resolve_node(c["node"], file, key=f"clusters.{i}.node")}
            if isinstance(c, dict) and "node" in c else c for i, c in enumerate(data["clusters"])]
    for kind in ("workloads", "serving_workloads"):
        if not isinstance(data.get(kind), list):
            continue
        out = []
        for i, w in enumerate(data[kind]):
            if isinstance(w, dict) and "model" in w:
                try:
                    w = {**w, "model": resolve_model(w["model"], base_dir, file)}
                except InputError as exc:
                    if exc.file != file:  # the error is inside a config.json: its own keys
                        raise
                    raise InputError(exc.message, file=file, key=f"{kind}.{i}.{exc.key}") from None
            out.append(w)
        data[kind] = out
    return data


def load_purchases(path: str | Path) -> PurchaseFile:
    """Read and validate a purchase file; errors name the file and the key."""
    from planner.spec.load import load_yaml, refuse_foreign_file, validate_model

    p = Path(path)
    data = load_yaml(p)
    refuse_foreign_file(data, path)
    if isinstance(data, dict) and not is_purchase(data) and ("training" in data or "serving" in data):
        kind, cmd = ("serving", "serve") if "serving" in data else ("training", "solve")
        raise InputError(f"this is a {kind} scenario, not a purchase file (clusters:, workloads:); plan it with "
                         f"`planner {cmd} {path}`", file=str(path), key=kind)
    return validate_model(PurchaseFile, _resolved(data, p.parent, str(path)), file=str(path))


def validate_purchases(path: str | Path) -> str:
    """One-line summary of a valid purchase file (for `planner validate`)."""
    pf = load_purchases(path)
    options = sum(len(c.node_counts) for c in pf.clusters)
    return (f"{path}: valid purchase file '{pf.name}': {len(pf.clusters)} clusters ({options} node counts), "
            f"{len(pf.workloads)} workloads" + (f", {len(pf.serving_workloads)} serving workloads"
                                                   if pf.serving_workloads else ""))
