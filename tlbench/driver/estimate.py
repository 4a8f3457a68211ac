"""A trial's seconds predicted before it runs, for the run's early answer
(progress.early_answer), from what its backbone's frozen-inputs task
measured (worker/frozen.py) and what the protocol runs (plan.Budget):

- the task's start-up and load (`setup_seconds`): a trial starts the same
  way, in a fresh process loading the same module;
- the peak FLOP/s probes, two at least (plan.PEAK_PROBE_SECONDS each);
- the search at the speed of the task's forward pass: every epoch it may run
  (plan.search_epochs; early stopping may end a rate sooner, so this is an
  upper bound) and its validation passes, then the one test pass. A mode
  trained on cached boundary activations runs only the part above the
  boundary (`top_share` of a forward pass); the probe reads the shared
  features, and transfer trains nothing else;
- the timed passes, training and inference: a step before the baseline,
  the warm-up steps, then each window at least so many steps and seconds.

Left out: the graph costs the first trial of each mode computes (seconds),
and a pass timed again when unstable."""

from __future__ import annotations

from dataclasses import dataclass

from tlbench.plan import PEAK_PROBE_SECONDS, STEP_FORWARDS, Budget, TrialSpec, search_epochs
from tlbench.registry import trains_backbone

# A step that trains what it runs: its forward and a backward of about twice that (STEP_FORWARDS' finetune).
TRAINED_STEP_FORWARDS = STEP_FORWARDS["finetune"]
PEAK_PROBES = 2  # before the training and after the timed passes (worker/trial.py)


@dataclass(frozen=True)
class Speed:
    """What a backbone's frozen-inputs task measured that its trials share."""

    images_per_sec: float  # the whole backbone's forward pass
    setup_seconds: float  # from the task's start to its module and splits loaded
    top_share: dict  # {partial mode: the share of a forward pass above its boundary}, where it was cut

    @classmethod
    def of(cls, summary: dict) -> Speed | None:
        """From a frozen task's summary; None where it failed or told no speed."""
        rate, setup = summary.get("feature_images_per_sec"), summary.get("setup_seconds")
        if "error" in summary or not rate or setup is None:
            return None
        return cls(float(rate), float(setup), dict(summary.get("top_share") or {}))


def trial_seconds(spec: TrialSpec, split_sizes: dict, speed: Speed, rates: int | None = None) -> float:
    """`spec`'s seconds by the module's measured speed and the protocol (see
    the module's docstring). `rates`: the fine-tuning rates it trains
    (carry.RateCarrier.searched_rates; default: the budget's)."""
    budget, forward = spec.budget, 1 / speed.images_per_sec
    train, val, test = (split_sizes[name] for name in ("train", "val", "test"))
    search = 0.0  # forward passes
    if trains_backbone(spec.mode):
        share = speed.top_share.get(spec.mode)
        step, evaluation = (
            (TRAINED_STEP_FORWARDS * share, share) if share is not None else (STEP_FORWARDS[spec.mode], 1)
        )
        search = search_epochs(budget, rates) * (step * train + evaluation * val) + test
    timed = sum(timed_pass_seconds(budget, spec.batch_size * k * forward) for k in (STEP_FORWARDS[spec.mode], 1))
    return speed.setup_seconds + PEAK_PROBES * PEAK_PROBE_SECONDS + search * forward + timed


def timed_pass_seconds(budget: Budget, step_seconds: float) -> float:
    """One timed pass (worker/trial.timed_passes, measure.time_steps) of
    steps that take `step_seconds`: a step before the baseline, the warm-up,
    then `timed_repeats` windows of at least `min_timed_steps` steps and
    `min_timed_seconds`."""
    windows = budget.timed_repeats * max(budget.min_timed_steps * step_seconds, budget.min_timed_seconds)
    return (1 + budget.warmup_steps) * step_seconds + windows
