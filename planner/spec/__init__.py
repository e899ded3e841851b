"""Validated inputs: model, hardware, scenario and plan (pydantic), and the readers that build them."""

from planner.spec._startup import import_without_asyncio

# pydantic's modules that the input models import, without asyncio nor importlib.metadata (start-up
# time: planner.spec._startup)
import_without_asyncio("pydantic", "pydantic.main", "pydantic.fields", "pydantic.functional_validators",
                       "pydantic.types", "pydantic.config", "pydantic.plugin._loader")

from planner.spec.hardware import GPU, Cluster, Node
from planner.spec.load import load_scenario, load_yaml, validate
from planner.spec.model import MLA, MoE, ModelSpec
from planner.spec.plan import Plan, parse_plan
from planner.spec.scenario import Budget, Scenario, SearchOptions, Training

__all__ = [
    "GPU", "Node", "Cluster", "ModelSpec", "MoE", "MLA", "Plan", "parse_plan",
    "Scenario", "Training", "Budget", "SearchOptions", "load_scenario", "load_yaml", "validate",
]
