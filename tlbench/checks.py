"""Checks of user-given values, one each: the command line's types use them,
and so does `--resume` on the values a run recorded in env.json. A bad value
is a UsageError whose one line says what was wrong and what is accepted.

Each check takes what the command line gives (text) or what JSON holds (a
number, a string) and returns the value as tlbench uses it.
"""

from __future__ import annotations

import math
import re

from tlbench.errors import UsageError

MAX_BATCH_SIZE = 4096


def whole_number(what: str, low: int, high: int | None = None):
    """A check for an int in [low, high]."""

    def check(value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise UsageError(f"{what} must be a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f"{what} must be a whole number, got '{value}'") from None
        if high is not None and not low <= number <= high:
            raise UsageError(f"{what} must be between {low} and {high}, got {number}")
        if number < low:
            raise UsageError(f"{what} must be {low} or more, got {number}")
        return number

    return check


def number(what: str, value) -> float:
    """A finite float, from text or a JSON number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{what} must be a number, got {value!r}")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise UsageError(f"{what} must be a number, got '{value}'") from None
    if not math.isfinite(result):
        raise UsageError(f"{what} must be a finite number, got '{value}'")
    return result


def positive(what: str):
    def check(value) -> float:
        result = number(what, value)
        if result <= 0:
            raise UsageError(f"{what} must be more than 0, got {value}")
        return result

    return check


def fraction(what: str):
    def check(value) -> float:
        result = number(what, value)
        if not 0.0 <= result <= 1.0:
            raise UsageError(f"{what} must be between 0 and 1, got {value}")
        return result

    return check


def momentum(value) -> float:
    """A BatchNorm momentum, strictly between 0 and 1."""
    result = number("batch norm momentum", value)
    if not 0.0 < result < 1.0:
        raise UsageError(f"batch norm momentum must be between 0 and 1 (exclusive), got {value}")
    return result


def flag(what: str, value) -> bool:
    """A recorded true/false."""
    if not isinstance(value, bool):
        raise UsageError(f"{what} must be true or false, got {value!r}")
    return value


def text(what: str, value) -> str:
    """A recorded non-empty string."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, got {value!r}")
    return value


batch_size = whole_number("batch size", 1, MAX_BATCH_SIZE)
MAX_BATCH = "max"  # --batch-size max: the largest that fits, searched (batch_search.py)


def batch_size_or_max(text: str) -> int | str:
    if text == MAX_BATCH:
        return MAX_BATCH
    try:
        return batch_size(text)
    except UsageError as error:
        raise UsageError(f"{error} (or {MAX_BATCH}: the largest that fits, searched)") from None


MAX_SEED = 2**31 - 1  # TensorFlow's and NumPy's seeds are 32-bit
seed = whole_number("seed", 0, MAX_SEED)
seeds = whole_number("seeds", 1, 100)
train_size = whole_number("train size", 1)
concurrency = whole_number("concurrency", 1, 1024)
max_retries = whole_number("max retries", 0, 100)


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12}
_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def size(text: str, what: str = "memory budget") -> float:
    """`4GiB`, `512 MiB`, `4GB`, `4e9`: a byte count; bad input is a UsageError."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if match is None or match.group(2) not in _UNITS:
        raise UsageError(f"{what} must be a size such as 4GiB, 512MiB or 8GB, got '{text}'")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value):
        raise UsageError(f"{what} must be a finite size, got '{text}'")
    if value <= 0:
        raise UsageError(f"{what} must be more than 0, got '{text}'")
    return value


MIN_DEVICE_MEMORY = 2**20  # the CPU allocator's limit is set in whole MiB


def device_memory(value) -> int:
    """--device-memory: a size (`2GiB`) or, as env.json records it, a byte
    count; at least 1 MiB."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise UsageError(f"device memory must be a size such as 2GiB, got {value!r}")
    result = int(size(value, "device memory") if isinstance(value, str) else value)
    if result < MIN_DEVICE_MEMORY:
        raise UsageError(f"device memory must be at least 1MiB, got {value!r}")
    return result
