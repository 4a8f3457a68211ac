"""`--batch-size max`: the largest batch whose training fits the device, found
by trying. The search starts from the graph's prediction
(`max_batch_size_predicted`) and tries batches in fresh worker processes
(worker/fit_probe.py), each ending "ok" or "oom" from a real allocation;
this module decides what to try next. No TensorFlow.

From the prediction it steps up while batches fit (or down while they
don't), by a factor that grows each step in the same direction (1.25, then
1.56, then 2): a good prediction costs few probes, a poor one is still
bracketed in a few. Then it bisects the bracket until the batch that fits
and the one that doesn't are within TOLERANCE of each other.
"""

from __future__ import annotations

from typing import TypedDict

TOLERANCE = 0.05  # the search stops when the smallest failing batch is within 5 % of the largest fitting one
FIRST_STEP = 1.25
MAX_PROBES = 20  # a bound: from a prediction 1000x off, bracketing and bisecting take 18
LARGEST = 1 << 16  # checks.MAX_BATCH_SIZE: no batch past it is tried


class FitProbe(TypedDict, total=False):
    """One batch tried, in a fresh worker process."""

    batch_size: int
    status: str  # "ok": its steps ran; "oom": an allocation failed; "error": anything else (the search stops)
    peak_memory_bytes: int | None  # the allocator's peak over the probe's steps (ok probes)
    error: str | None  # the failure's line
    seconds: float  # the probe's process, from start to end


class BatchSizeSearch(TypedDict, total=False):
    """A backbone x mode's search, as its trial's record and env.json keep it."""

    device_memory_bytes: int | None  # the device searched on (--device-memory, or the device's own)
    predicted: int | None  # the graph's largest batch for it (max_batch_size_predicted)
    found: int | None  # the largest batch whose probe ran; None: not even batch 1
    probes: list[FitProbe]  # in the order tried
    stopped: str  # why the search ended


def search_key(backbone: str, mode: str) -> str:
    return f"{backbone}/{mode}"


def found(probes: list[FitProbe]) -> int | None:
    fitting = [p["batch_size"] for p in probes if p["status"] == "ok"]
    return max(fitting) if fitting else None


def next_batch(predicted: int | None, probes: list[FitProbe]) -> tuple[int | None, str]:
    """The next batch to try, or None and why the search ends."""
    if any(p["status"] == "error" for p in probes):
        return None, "a probe failed for a reason other than memory: " + str(probes[-1].get("error"))
    if not probes:
        return min(max(predicted or 1, 1), LARGEST), ""
    if len(probes) >= MAX_PROBES:
        return None, f"{MAX_PROBES} probes"
    fits = found(probes)
    failing = [p["batch_size"] for p in probes if p["status"] == "oom"]
    fails = min(failing) if failing else None
    if fits is not None and fails is not None and fails <= max(fits + 1, fits * (1 + TOLERANCE)):
        return None, f"batch {fits} fits and {fails} does not"
    if fails is None:  # every probe fit: step up
        if fits >= LARGEST:
            return None, f"batch {LARGEST}, the largest tlbench takes, fits"
        return min(max(fits + 1, round(fits * _step(probes))), LARGEST), ""
    if fits is None:  # none fit: step down
        if fails == 1:
            return None, "batch 1 does not fit"
        return max(1, min(fails - 1, round(fails / _step(probes)))), ""
    return (fits + fails) // 2, ""


def _step(probes: list[FitProbe]) -> float:
    """FIRST_STEP, squared for every earlier probe that went the same way, at most 2."""
    same = 0
    for probe in reversed(probes):
        if probe["status"] != probes[-1]["status"]:
            break
        same += 1
    return min(2.0, FIRST_STEP ** (2 ** min(same - 1, 3)))
