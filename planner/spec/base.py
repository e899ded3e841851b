"""Shared pydantic base and number types for every input model.

YAML 1.1 loaders (PyYAML) read `1.0e11` or `1e6` as strings; the number types below accept such
strings, and integers written as integral floats (`4096.0`), and reject everything else. They also
reject booleans: YAML 1.1 reads `yes`, `no`, `on`, `off`, `true` and `false` as booleans, which Python
would otherwise take for 1 and 0 (`nodes: yes` silently became one node).

`Name` is the type of every name: printable text without control characters (a newline in a name
would end the comment line of an exported script and start a command).
"""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field


def _to_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()} "
                         "(YAML reads yes/no/on/off/true/false as booleans)")
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


def _to_count(value: Any) -> Any:
    """A model's shape count (layers, heads, widths, experts): a number, never text. `layers: "32"` is a
    quoted number (YAML reads an unquoted 32 as an integer; config.json numbers are JSON numbers), a
    mistake worth naming rather than reading as 32."""
    if isinstance(value, str):
        raise ValueError(f"expected a whole number, not the text {value!r} (a quoted number is text: "
                         "remove the quotes)")
    return _to_int(value)


Int = Annotated[int, BeforeValidator(_to_int)]
Count = Annotated[int, BeforeValidator(_to_count), Field(ge=1, le=2**40)]
NonNegCount = Annotated[int, BeforeValidator(_to_count), Field(ge=0, le=2**40)]
PosInt = Annotated[int, BeforeValidator(_to_int), Field(ge=1, le=2**40)]
NonNegInt = Annotated[int, BeforeValidator(_to_int), Field(ge=0, le=2**40)]
Float = Annotated[float, BeforeValidator(_to_number), Field(allow_inf_nan=False)]
PosFloat = Annotated[float, BeforeValidator(_to_number), Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, BeforeValidator(_to_number), Field(ge=0, allow_inf_nan=False)]
# Money: every price, cost and budget term is at most 1e12 USD, so sums of them stay exact in float64
# and within the int64 domain of the CP-SAT purchase solver (planner/purchase_mix.py scales to it).
MAX_USD = 1e12
USD = Annotated[float, BeforeValidator(_to_number), Field(ge=0, le=MAX_USD, allow_inf_nan=False)]


def _check_name(value: Any) -> Any:
    if isinstance(value, str) and not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise ValueError(f"names must be printable text without control characters (found {bad!r})")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_check_name)]


class Strict(BaseModel):
    """Unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
