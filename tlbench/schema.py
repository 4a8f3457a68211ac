"""JSON objects checked against TypedDicts: the trial record's (record.py)
and env.json's (run_env.py). Knows types and ranges, not records.

A field's type may carry a range (`Annotated[float, FRACTION]`): the reader
leaves a value outside it out as it does a value of the wrong type, naming
both. Writers check types only (`built`): a value out of range is what the
trial measured, kept in the file, and judged where it is read.
"""

from __future__ import annotations

import enum
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Range:
    """The values a number may take: finite, from `low` (excluded when
    `low_open`) to `high`."""

    name: str  # how a message says it: "a fraction in [0, 1]"
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False

    def holds(self, value) -> bool:
        number = finite(value)
        if number is None:
            return False
        above = number > self.low if self.low_open else number >= self.low
        return above and number <= self.high


FRACTION = Range("a fraction in [0, 1]", high=1.0)
POSITIVE = Range("a finite number > 0", low_open=True)
NON_NEGATIVE = Range("a finite number ≥ 0")
COUNT = Range("a whole number ≥ 0")

Fraction = Annotated[float, FRACTION]  # accuracies, shares of the CPU
Rate = Annotated[float, POSITIVE]  # images/s, FLOP/s
Seconds = Annotated[float, NON_NEGATIVE]
Bytes = Annotated[int, COUNT]
Count = Annotated[int, COUNT]
NonNegative = Annotated[float, NON_NEGATIVE]  # ratios (MFU, spreads), differences

_DROP = object()


@functools.cache
def hints(kind) -> dict[str, object]:
    """A TypedDict's fields and their types, ranges included: worked out once
    per TypedDict, not again for every timing and curve point of every record."""
    return typing.get_type_hints(kind, include_extras=True)


def built(fields: dict, kinds: dict[str, object], what: str) -> dict:
    """`fields` as the JSON values they stand for (`_plain`), checked against
    `kinds` (field -> type; ranges aside): an unknown field or a value of the
    wrong type is a TypeError naming them."""
    unknown = sorted(set(fields) - set(kinds))
    if unknown:
        raise TypeError(f"not {what} fields: {', '.join(unknown)}")
    plain = {key: _plain(value) for key, value in fields.items()}
    wrong = [line for key, value in plain.items() for line in problems(value, kinds[key], key, ranges=False)]
    if wrong:
        raise TypeError(f"{what} fields of the wrong type: " + "; ".join(wrong))
    return plain


def kept(payload: dict, kinds: dict[str, object]) -> tuple[dict, dict[str, list[str]]]:
    """`payload` with every part of the wrong type or out of range left out,
    and per field that lost a part (or went whole), one line per part naming
    it. Fields `kinds` doesn't know (a later version's) are kept as they are."""
    result, dropped = {}, {}
    for key, value in payload.items():
        kind = kinds.get(key)
        wrong = [] if kind is None else problems(value, kind, key)
        if wrong:
            dropped[key] = wrong
            value = _without_bad_parts(value, kind)
            if value is _DROP:
                continue
        result[key] = value
    return result, dropped


def problems(value, kind, path: str, *, ranges: bool = True) -> list[str]:
    """Why `value` is not of `kind` ([] when it is): one line per bad part,
    naming the part (`train_timing.images_per_sec_median`). `ranges`: a
    number outside its field's range is a problem too."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Annotated:
        inner, *extras = args
        wrong = problems(value, inner, path, ranges=ranges)
        bounds = [extra for extra in extras if isinstance(extra, Range)]
        if wrong or not ranges or all(bound.holds(value) for bound in bounds):
            return wrong
        return [f"{path} is {kind_of(value)}, not {bounds[0].name}"]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        (inner,) = [a for a in args if a is not type(None)]
        return problems(value, inner, path, ranges=ranges)
    if _is_typed_dict(kind):
        if not isinstance(value, dict):
            return [f"{path} is {kind_of(value)}, not an object"]
        fields = hints(kind)
        return [
            p
            for key, item in value.items()
            if key in fields
            for p in problems(item, fields[key], f"{path}.{key}", ranges=ranges)
        ]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path} is {kind_of(value)}, not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{path}[{i}]", ranges=ranges)]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path} is {kind_of(value)}, not an object"]
        return [p for key, item in value.items() for p in problems(item, args[1], f"{path}.{key}", ranges=ranges)]
    if _fits(value, kind):
        return []
    return [f"{path} is {kind_of(value)}, not {_name(kind)}"]


def finite(value) -> float | None:
    """A finite int or float (not a bool: JSON true is no number), else None;
    a record's fields may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an int too large for a float
        return None


def _fits(value, kind) -> bool:
    if _is_enum(kind):
        return isinstance(value, str) and value in {member.value for member in kind}
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # JSON true is not a number
    if kind is float:
        return isinstance(value, (int, float)) and not (isinstance(value, int) and abs(value) > 2**1023)
    return isinstance(value, kind)


def _without_bad_parts(value, kind):
    """`value` with what doesn't fit `kind` taken out: bad keys of an object
    are dropped; a list or map with a bad item, or a bad scalar, goes whole."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in args if a is not type(None)]
    if _is_typed_dict(kind) and isinstance(value, dict):
        fields = hints(kind)
        result = {}
        for key, item in value.items():
            if key in fields and problems(item, fields[key], key):
                item = _without_bad_parts(item, fields[key])
                if item is _DROP:
                    continue
            result[key] = item
        return result
    return _DROP


def _is_typed_dict(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__total__")


def _is_enum(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true/false"}


def _name(kind) -> str:
    if _is_enum(kind):  # ok, oom or error
        *others, last = [member.value for member in kind]
        return f"{', '.join(others)} or {last}"
    return _NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def kind_of(value) -> str:
    """What a JSON value is, with a short excerpt."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _plain(value):
    """NumPy scalars and arrays, and tuples, as the JSON types they stand for."""
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
