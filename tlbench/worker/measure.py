"""What one measurement is: timed windows of steps after warm-up, with the
CPU other processes took meanwhile; peak memory against a baseline; the
device's peak FLOP/s.

`time_steps` knows nothing of TensorFlow: a step is any callable, and the
caller passes the `sync` that waits for the device, so every clock read sees
finished work. `time_until_stable` times a pass again while `stability`
judges it unstable.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import psutil

from tlbench import stability
from tlbench.plan import PEAK_PROBE_SECONDS


@dataclass(frozen=True)
class TimingPlan:
    """The one definition of a throughput measurement."""

    warmup_steps: int  # untimed: tracing, any XLA compile, allocator warm-up
    min_steps: int  # a timed window holds at least this many steps ...
    min_seconds: float  # ... and lasts at least this long
    repeats: int = 1  # timed windows; the median and spread are over these


@dataclass(frozen=True)
class Window:
    steps: int
    seconds: float  # from a synchronised clock read to the next
    other_cpu_share: float | None = None  # OtherCpu.share over the window; None when unmeasurable


@dataclass(frozen=True)
class Timing:
    batch_size: int
    windows: tuple[Window, ...]  # one per repeat, warm-up excluded
    attempts: int = 1  # times the pass was timed (time_until_stable); this is the one kept

    @property
    def images_per_sec(self) -> float:
        """The median over windows."""
        return statistics.median(self._rates())

    def summary(self) -> dict:
        rates = self._rates()
        step_seconds = [w.seconds / w.steps for w in self.windows]
        shares = [w.other_cpu_share for w in self.windows if w.other_cpu_share is not None]
        summary = {
            "repeats": len(self.windows),
            "timed_steps": sum(w.steps for w in self.windows),
            "window_steps_min": min(w.steps for w in self.windows),
            "timed_seconds": sum(w.seconds for w in self.windows),
            "attempts": self.attempts,
            **_spread("images_per_sec", rates),
            **_spread("step_seconds", step_seconds),
        }
        if len(rates) > 1:  # pyperf's measure of spread: sample standard deviation over mean
            summary["images_per_sec_cv"] = statistics.stdev(rates) / statistics.mean(rates)
        if shares:
            summary["other_cpu_share_max"] = max(shares)
            summary["other_cpu_share_mean"] = statistics.mean(shares)
        return summary

    def _rates(self) -> list[float]:
        return [self.batch_size * w.steps / w.seconds for w in self.windows]


def _spread(name: str, values: list[float]) -> dict:
    """Median, interquartile range and extremes (quartiles need two values)."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else (values[0],) * 3
    return {
        f"{name}_median": statistics.median(values),
        f"{name}_q1": q1,
        f"{name}_q3": q3,
        f"{name}_min": min(values),
        f"{name}_max": max(values),
    }


def _no_sync() -> None:
    pass


class OtherCpu:
    """The share of the machine's CPU time that other processes took since
    this was made: the system's busy time (all but idle and iowait; steal
    counts, it is a neighbour's) less this process's own CPU time, over the
    system's total CPU time (wall time x logical cores, as the kernel counts
    it, so no clock is needed)."""

    # The kernel counts CPU time in ticks of about 10 ms per core: below half
    # a second of the machine's CPU time the share is mostly rounding.
    MIN_CPU_SECONDS = 0.5

    def __init__(self, process: psutil.Process):
        self._process = process
        self._start = self._read()

    def _read(self) -> tuple[float, float, float]:
        system, own = psutil.cpu_times(), self._process.cpu_times()
        # Linux counts guest time inside user and nice already.
        total = sum(system) - getattr(system, "guest", 0.0) - getattr(system, "guest_nice", 0.0)
        busy = total - system.idle - getattr(system, "iowait", 0.0)
        return total, busy, own.user + own.system

    def share(self) -> float | None:
        """None for a window too short to tell (MIN_CPU_SECONDS)."""
        total, busy, own = (end - start for end, start in zip(self._read(), self._start))
        if total < self.MIN_CPU_SECONDS:
            return None
        return min(max((busy - own) / total, 0.0), 1.0)


def time_steps(
    step: Callable[[], object],
    plan: TimingPlan,
    batch_size: int,
    *,
    sync: Callable[[], object] = _no_sync,
    clock=time.perf_counter,
) -> Timing:
    """`plan.warmup_steps` untimed steps, then `plan.repeats` timed windows,
    each running steps until both `min_steps` and `min_seconds` are reached.

    `sync()` waits for the device to finish queued work; it runs before each
    window's clock reads, so a window times finished work and steps within it
    still overlap as they would in training (no sync between steps). Each
    window also records the CPU other processes took meanwhile (OtherCpu).
    """
    for _ in range(plan.warmup_steps):
        step()
    process, windows = psutil.Process(), []
    for _ in range(max(plan.repeats, 1)):
        sync()
        others = OtherCpu(process)
        start = clock()
        steps = 0
        while steps < max(plan.min_steps, 1) or clock() - start < plan.min_seconds:
            step()
            steps += 1
        sync()
        seconds = clock() - start
        windows.append(Window(steps, seconds, others.share()))
    return Timing(batch_size=batch_size, windows=tuple(windows))


def time_until_stable(
    step: Callable[[], object],
    plan: TimingPlan,
    batch_size: int,
    *,
    sync: Callable[[], object] = _no_sync,
    clock=time.perf_counter,
) -> Timing:
    """`time_steps`, then again (warm already) while `stability` judges the
    pass unstable, `stability.TIMING_ATTEMPTS` times at most: the stable
    attempt, or else the least unstable, with the number of attempts."""
    timing = time_steps(step, plan, batch_size, sync=sync, clock=clock)
    attempts = 1
    while attempts < stability.TIMING_ATTEMPTS and stability.timing_problem(timing.summary()):
        again = time_steps(step, replace(plan, warmup_steps=0), batch_size, sync=sync, clock=clock)
        attempts += 1
        if stability.unsteadiness(again.summary()) < stability.unsteadiness(timing.summary()):
            timing = again
    return replace(timing, attempts=attempts)


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
    """TensorFlow's allocator peak for one device (`GPU:0`, or `CPU:0`: tlbench
    sets the CPU allocator to BFC, which keeps statistics, before TensorFlow
    is imported), falling back to the process RSS high-water mark when the
    allocator reports nothing (TensorFlow imported before tlbench)."""

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

    @property
    def allocator(self) -> bool:
        return self._allocator

    def runtime_overhead(self) -> int | None:
        """What the process holds now beyond the allocator's bytes in use: the
        runtime, libraries, Python and the allocator's unused reserve. None
        where the allocator keeps no statistics (`in_use` is the RSS then)."""
        if not self._allocator:
            return None
        return max(psutil.Process().memory_info().rss - self.in_use(), 0)

    def peak(self) -> tuple[int, str]:
        """(peak bytes since `reset`, how it was measured)."""
        if self._allocator:
            peak = int(self._experimental.get_memory_info(self.device)["peak"])
            if peak > 0:
                return peak, f"tf-allocator:{self.device}"
        return self.rss.peak_bytes(), self.rss.method


# Matrix sizes for the peak probe: big enough to reach the FLOP/s the device
# sustains on dense float math (about 0.08 s per matmul on 2 CPU cores), small
# enough that the probe costs well under a second.
PROBE_SIZE = {"CPU": 2048, "GPU": 8192}


def matmul_peak_flops(device: str, dtype: str = "float32", seconds: float = PEAK_PROBE_SECONDS) -> tuple[float, str]:
    """(FLOP/s, method): the best rate of a square matmul on `device`, the
    yardstick for model FLOP utilisation. A multiply-add counts 2 FLOPs, as in
    the model's FLOP count."""
    import tensorflow as tf

    n = PROBE_SIZE["GPU" if device.startswith("GPU") else "CPU"]
    with tf.device(device):
        a = tf.random.uniform((n, n), dtype=dtype)
        b = tf.random.uniform((n, n), dtype=dtype)
        matmul = tf.function(tf.matmul)
        sync = tf.test.experimental.sync_devices
        matmul(a, b)  # trace and warm up
        sync()
        best, start, runs = 0.0, time.perf_counter(), 0
        while runs < 3 or time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            matmul(a, b)
            sync()
            best = max(best, 2 * n**3 / (time.perf_counter() - begin))
            runs += 1
    return best, f"matmul-probe:{device}:{dtype}:{n}x{n}:best-of-{runs}"


class PeakFlops:
    """The device's peak FLOP/s from a matmul probe: the yardstick of MFU.

    The peak is the best rate seen: a disturbance only ever slows a probe
    down. So when the two best probes disagree beyond the stability
    tolerance, the probe runs again (at most `EXTRA_PROBES` times), and the
    judgement compares the two best (stability.peak_probe_problem)."""

    EXTRA_PROBES = 2

    def __init__(self, device: str, dtype: str):
        self.device, self.dtype = device, dtype
        self.flops_per_sec, self.method = matmul_peak_flops(device, dtype)
        self.probes = [self.flops_per_sec]  # every probe, in order: how far apart they are says how stable

    def probe_again(self) -> None:
        self._probe()
        for _ in range(self.EXTRA_PROBES):
            if stability.peak_probe_problem(self.probes) is None:
                break
            self._probe()
        self.method += f":best-of-{len(self.probes)}-probes"

    def _probe(self) -> None:
        again, method = matmul_peak_flops(self.device, self.dtype)
        self.probes.append(again)
        if again > self.flops_per_sec:
            self.flops_per_sec, self.method = again, method
