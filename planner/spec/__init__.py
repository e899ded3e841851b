"""Validated inputs: model, hardware, scenario and plan (pydantic), and the readers that build them."""

from planner.spec.hardware import GPU, Cluster, Node
from planner.spec.load import load_scenario, load_yaml, validate
from planner.spec.model import MLA, MoE, ModelSpec
from planner.spec.plan import Plan, parse_plan
from planner.spec.scenario import Budget, Scenario, SearchOptions, Training

__all__ = [
    "GPU", "Node", "Cluster", "ModelSpec", "MoE", "MLA", "Plan", "parse_plan",
    "Scenario", "Training", "Budget", "SearchOptions", "load_scenario", "load_yaml", "validate",
]
