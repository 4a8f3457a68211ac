"""When a timed figure can't be trusted: the tolerances and the judgement.

A throughput is only worth comparing when it was taken on a machine doing
nothing else and repeats itself. pyperf warns when a benchmark is unstable;
tlbench judges every timed figure the same way and says why, with numbers.
Records only, no TensorFlow: the worker judges its own passes, the report
judges across a run's trials.

The tolerances:

- `MAX_WINDOW_SPREAD` (10 %): the coefficient of variation (sample standard
  deviation over mean) of a pass's per-window images/s. pyperf calls a
  benchmark unstable when its standard deviation is 10 % of the mean or more;
  on a quiet machine windows of a second repeat within a few percent.
- `MAX_OTHER_CPU` (15 %): the share of the machine's CPU time other processes
  took while the windows were timed (`measure.OtherCpu`). Ray's own daemons
  take about 3 % of a quiet 2-core machine; 15 % is a core's sixth on 2
  cores, enough to slow a step that keeps both cores busy.
- `MAX_PEAK_PROBE_DISAGREEMENT` (20 %): the device's peak FLOP/s is probed
  before and after the timed passes; a matmul's best rate repeats within a
  few percent, so probes further apart than this saw another load, and the
  peak and the MFU figures divided by it are unstable.
- `MAX_TRIAL_DEVIATION` (25 %): inference of a backbone at a batch size is the
  same forward pass in every mode and seed of a run (and training the same
  step in every seed of a mode). A trial more than this far from its group's
  median is unstable; with two trials, a ratio beyond 1.25 marks both, as
  neither can be told to be the right one. Found at report time (`judged`).
- Smoke (`MIN_MEASURED_WINDOWS` 2, `MIN_MEASURED_STEPS` 3): a pass timed in
  one window, or in windows of fewer than 3 steps (the quick budget's 1 of 1),
  shows the code path runs; its figure is no measurement. It is labelled
  "smoke" and never called stable or unstable.
"""

from __future__ import annotations

import statistics

from tlbench.record import ended_ok, finite

MAX_WINDOW_SPREAD = 0.10
MAX_OTHER_CPU = 0.15
MAX_PEAK_PROBE_DISAGREEMENT = 0.20
MAX_TRIAL_DEVIATION = 0.25
MIN_MEASURED_WINDOWS = 2
MIN_MEASURED_STEPS = 3

# A pass judged unstable is timed again (pyperf's answer: more runs), at most
# this many times in all; the stable attempt, or else the least unstable, is kept.
TIMING_ATTEMPTS = 3

MEASURED, SMOKE = "measured", "smoke"

ADVICE = (
    "stop other work on the machine and run again; figures taken while other processes used the CPU are not comparable"
)
SMOKE_NOTE = (
    "timed in one window or in windows of fewer than 3 steps (the quick budget): the code path ran, the "
    "figures are no measurement; run without --quick to measure speed"
)
FIGURE_NAMES = {
    "train_images_per_sec": "training images/s",
    "infer_images_per_sec": "inference images/s",
    "peak_flops_per_sec": "peak FLOP/s (and MFU)",
}


def quality(timing: dict) -> str:
    """MEASURED or SMOKE, from a pass's timing summary (measure.Timing.summary)."""
    windows = finite(timing.get("repeats")) or 0
    fewest_steps = finite(timing.get("window_steps_min"))
    if fewest_steps is None and finite(timing.get("timed_steps")):  # records before the field: the mean steps
        fewest_steps = timing["timed_steps"] / max(windows, 1)
    too_few_steps = fewest_steps is not None and fewest_steps < MIN_MEASURED_STEPS
    return SMOKE if windows < MIN_MEASURED_WINDOWS or too_few_steps else MEASURED


def timing_problem(timing: dict) -> str | None:
    """Why a measured pass is unstable, in one line with its numbers; None
    when it is stable, or a smoke figure."""
    if quality(timing) == SMOKE:
        return None
    problems = []
    spread, other = finite(timing.get("images_per_sec_cv")), finite(timing.get("other_cpu_share_mean"))
    if spread is not None and spread > MAX_WINDOW_SPREAD:
        problems.append(f"spread {_percent(spread)} over {timing['repeats']} windows (> {_percent(MAX_WINDOW_SPREAD)})")
    if other is not None and other > MAX_OTHER_CPU:
        problems.append(f"other processes took {_percent(other)} of the CPU while timed (> {_percent(MAX_OTHER_CPU)})")
    return "; ".join(problems) or None


def unsteadiness(timing: dict) -> float:
    """How far a pass is from stable, in multiples of the tolerances (at most
    1 is stable): which of several attempts to keep."""
    spread, other = finite(timing.get("images_per_sec_cv")) or 0.0, finite(timing.get("other_cpu_share_mean")) or 0.0
    return max(spread / MAX_WINDOW_SPREAD, other / MAX_OTHER_CPU)


def peak_probe_problem(probes: list[float]) -> str | None:
    """Why the peak FLOP/s is unstable (its two best probes disagree); None
    when not. The best two: a disturbed probe is only ever slower, and the
    worker probes again while they disagree (measure.PeakFlops)."""
    best = sorted(probes, reverse=True)[:2]
    if len(best) < 2 or best[1] <= 0:
        return None
    disagreement = best[0] / best[1] - 1
    if disagreement <= MAX_PEAK_PROBE_DISAGREEMENT:
        return None
    values = ", ".join(f"{p:.3g}" for p in probes)
    return (
        f"the best two of the peak-FLOP/s probes disagree by {_percent(disagreement)} "
        f"({values} FLOP/s; > {_percent(MAX_PEAK_PROBE_DISAGREEMENT)})"
    )


def judge_trial(train_timing: dict, infer_timing: dict, peak_probes: list[float]) -> dict:
    """A trial's `timing_quality` and `unstable` record fields."""
    problems = {
        "train_images_per_sec": timing_problem(train_timing),
        "infer_images_per_sec": timing_problem(infer_timing),
        "peak_flops_per_sec": peak_probe_problem(peak_probes),
    }
    smoke = SMOKE in (quality(train_timing), quality(infer_timing))
    return {
        "timing_quality": SMOKE if smoke else MEASURED,
        "unstable": {figure: reason for figure, reason in problems.items() if reason},
    }


def record_quality(record: dict) -> str | None:
    """A record's timing quality; for records of versions before the field,
    from its timing summary; None when it has neither."""
    if isinstance(record.get("timing_quality"), str):
        return record["timing_quality"]
    timing = record.get("train_timing")
    return quality(timing) if isinstance(timing, dict) and finite(timing.get("repeats")) is not None else None


def unstable(record: dict) -> dict:
    """The record's unstable figures and why ({} when none or not recorded)."""
    value = record.get("unstable")
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------ across trials

# What makes two trials time the same computation, per figure: inference is
# the same forward pass in every mode (a TF1 module fine-tunes through its
# conversion, a different implementation); training the same step in every seed.
_SAME_RUN = ("batch_size", "weights", "dataset", "budget", "device", "xla", "mixed_precision")
_SAME_COMPUTATION = {
    "infer_images_per_sec": ("backbone", *_SAME_RUN, "module_format", "converted_from"),
    "train_images_per_sec": ("backbone", "mode", "batch_norm", *_SAME_RUN, "module_format", "converted_from"),
}
_PASS_NAMES = {"infer_images_per_sec": "inference", "train_images_per_sec": "training"}


def inconsistent(records) -> dict[str, dict[str, str]]:
    """Trials whose figure disagrees with the other trials timing the same
    computation (MAX_TRIAL_DEVIATION): trial_id -> {figure: reason}. Only
    measured ok trials not already unstable in that figure are compared."""
    found: dict[str, dict[str, str]] = {}
    for figure, key_fields in _SAME_COMPUTATION.items():
        groups: dict[tuple, list[dict]] = {}
        for record in records:
            value = record.get(figure)
            if (
                ended_ok(record)
                and (finite(value) or 0) > 0
                and record_quality(record) == MEASURED
                and figure not in unstable(record)
            ):
                groups.setdefault(tuple(str(record.get(k)) for k in key_fields), []).append(record)
        for group in groups.values():
            for record, reason in _deviations(group, figure):
                found.setdefault(str(record.get("trial_id")), {})[figure] = reason
    return found


def _deviations(group: list[dict], figure: str):
    """(record, reason) for each trial of `group` too far from the others."""
    name, tolerance = _PASS_NAMES[figure], MAX_TRIAL_DEVIATION
    if len(group) == 2:  # a median of two is their mean: compare the pair instead
        ratio = max(r[figure] for r in group) / min(r[figure] for r in group)
        if ratio > 1 + tolerance:
            for mine, other in (group, group[::-1]):
                reason = (
                    f"{name} {mine[figure]:,.1f} images/s against {other[figure]:,.1f} in {other.get('trial_id')}, "
                    f"the same computation (ratio {ratio:.2f} > {1 + tolerance:.2f})"
                )
                yield mine, reason
        return
    if len(group) < 2:
        return
    median = statistics.median(r[figure] for r in group)
    for record in group:
        deviation = record[figure] / median - 1
        if abs(deviation) > tolerance:
            reason = (
                f"{name} {record[figure]:,.1f} images/s is {_percent(abs(deviation))} "
                f"{'below' if deviation < 0 else 'above'} the median {median:,.1f} of {len(group)} trials timing "
                f"the same computation (> {_percent(tolerance)})"
            )
            yield record, reason


def judged(records) -> list[dict]:
    """The records with `unstable` holding the cross-trial findings too, for
    the report and `compare`; once per run as read (the records changed are
    copies)."""
    found = inconsistent(records)
    out = []
    for record in records:
        extra = found.get(str(record.get("trial_id")))
        if extra:
            record = {**record, "unstable": {**unstable(record), **extra}}
        out.append(record)
    return out


def unstable_lines(records) -> list[str]:
    """One line per unstable figure of each record: `trial_id`: figure: why."""
    return [
        f"`{record.get('trial_id')}`: {FIGURE_NAMES.get(figure, figure)}: {why}"
        for record in records
        for figure, why in unstable(record).items()
    ]


def smoke_trials(records) -> list[str]:
    """The trial ids whose timed figures are smoke figures."""
    return [str(record.get("trial_id")) for record in records if record_quality(record) == SMOKE]


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"
