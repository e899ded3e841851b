"""Shared pydantic base and number types for every input model.

YAML 1.1 loaders (PyYAML) read `1.0e11` or `1e6` as strings; the number types below accept such
strings, and integers written as integral floats (`4096.0`), and reject everything else.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _to_number(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            value = float(text)
        except ValueError:
            return value  # let pydantic report the type error
    return value


def _to_int(value: Any) -> Any:
    value = _to_number(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_to_int)]
PosInt = Annotated[int, BeforeValidator(_to_int), Field(ge=1, le=2**40)]
NonNegInt = Annotated[int, BeforeValidator(_to_int), Field(ge=0, le=2**40)]
Float = Annotated[float, BeforeValidator(_to_number), Field(allow_inf_nan=False)]
PosFloat = Annotated[float, BeforeValidator(_to_number), Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, BeforeValidator(_to_number), Field(ge=0, allow_inf_nan=False)]


class Strict(BaseModel):
    """Unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
