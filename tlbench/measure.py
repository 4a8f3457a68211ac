"""What one measurement is: timed steps after warm-up, and peak memory.

`time_steps` knows nothing of TensorFlow: a step is any callable that returns
only when its work is done (the caller synchronises the device, e.g. by
reading the loss back to the host), so the clock is read on finished work.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class TimingPlan:
    warmup_steps: int  # untimed: tracing, compilation, allocator warm-up
    min_steps: int  # timed steps, at least ...
    min_seconds: float  # ... and at least this long in total


@dataclass(frozen=True)
class Timing:
    batch_size: int
    step_seconds: tuple[float, ...]  # each timed step, warm-up excluded

    @property
    def images_per_sec(self) -> float:
        return self.batch_size * len(self.step_seconds) / sum(self.step_seconds)

    def summary(self) -> dict:
        steps = sorted(self.step_seconds)
        return {
            "timed_steps": len(steps),
            "step_seconds_median": statistics.median(steps),
            "step_seconds_min": steps[0],
            "step_seconds_max": steps[-1],
        }


def time_steps(step: Callable[[], object], plan: TimingPlan, batch_size: int, clock=time.perf_counter) -> Timing:
    """Run `plan.warmup_steps` untimed steps, then time steps one by one until
    both `min_steps` and `min_seconds` are reached."""
    for _ in range(plan.warmup_steps):
        step()
    durations: list[float] = []
    while len(durations) < max(plan.min_steps, 1) or sum(durations) < plan.min_seconds:
        start = clock()
        step()
        durations.append(clock() - start)
    return Timing(batch_size=batch_size, step_seconds=tuple(durations))


class ProcessPeakRss:
    """The process's resident-set high-water mark, reset per phase where the
    kernel allows it (Linux `/proc/self/clear_refs`)."""

    def __init__(self):
        self.resettable = _can_reset_hwm()
        self.method = "rss-hwm" if self.resettable else "rss-hwm-since-start"

    def reset(self) -> None:
        if self.resettable:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # 5 = reset the peak RSS to the current RSS

    def peak_bytes(self) -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        # ru_maxrss is kibibytes on Linux, bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class TensorFlowPeakMemory:
    """TensorFlow's allocator peak for one device (`GPU:0`, or `CPU:0` where
    the CPU allocator keeps statistics), falling back to the process RSS
    high-water mark when the allocator reports nothing."""

    def __init__(self, device: str):
        import tensorflow as tf

        self._experimental = tf.config.experimental
        self.device = device
        self.rss = ProcessPeakRss()
        try:
            self._experimental.reset_memory_stats(device)
            self._allocator = True
        except (ValueError, RuntimeError, tf.errors.OpError):
            self._allocator = False

    def reset(self) -> None:
        if self._allocator:
            self._experimental.reset_memory_stats(self.device)
        self.rss.reset()

    def in_use(self) -> int:
        """Bytes allocated now, by the same measure as `peak`."""
        if self._allocator:
            current = int(self._experimental.get_memory_info(self.device)["current"])
            if current > 0:
                return current
        return psutil.Process().memory_info().rss

    def peak(self) -> tuple[int, str]:
        """(peak bytes since `reset`, how it was measured)."""
        if self._allocator:
            peak = int(self._experimental.get_memory_info(self.device)["peak"])
            if peak > 0:
                return peak, f"tf-allocator:{self.device}"
        return self.rss.peak_bytes(), self.rss.method
