"""The live view of a running grid: done / running / failed out of the total,
which trial runs where, elapsed time and an estimate of the rest.

The estimate counts each trial not ended by its seconds predicted from its
backbone's frozen-inputs task (estimate.py), from the moment that task ends,
before any trial. It follows the protocol, where one line through FLOPs
and the finished trials' seconds can't fit both trials that are mostly
fixed seconds and trials that are mostly epochs (README: measured over three
runs' records). A trial without a prediction (its backbone's frozen
work not shared, or not ended yet) counts its predicted FLOPs
(plan.predicted_flops) scaled by what the finished trials took: seconds =
fixed + FLOPs x seconds per FLOP, fitted by least squares once two trials
of different predictions have ended, through the origin after one. A running
trial counts what it has left."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tlbench.record import ended_ok


@dataclass
class GridProgress:
    total: int
    parallel: int  # trials the cluster runs at once
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0  # status oom or error
    trial_seconds: list = field(default_factory=list)
    running: dict = field(default_factory=dict)  # trial id -> {"node": ..., "gpus": ..., "since": unix time}
    # frozen inputs (worker/frozen.py): computation -> backbone, and how many finished trials used them
    frozen: dict = field(default_factory=dict)
    frozen_users: int = 0
    # trial id -> its predicted FLOPs, every trial the run will run; none: the mean of the finished ones
    predicted: dict = field(default_factory=dict)
    measured: list = field(default_factory=list)  # (predicted FLOPs, seconds) of the finished trials
    ended: set = field(default_factory=set)  # their trial ids
    seconds: dict = field(default_factory=dict)  # trial id -> its seconds predicted (estimate.trial_seconds)

    def finished(self, record: dict) -> None:
        shared = record.get("frozen_inputs") or {}
        if shared.get("shared"):
            self.frozen[shared["computation"]] = record.get("backbone")
            self.frozen_users += 1
        self.done += 1
        self.failed += not ended_ok(record)
        if record.get("seconds"):
            self.trial_seconds.append(record["seconds"])
            if record.get("trial_id") in self.predicted:
                self.measured.append((self.predicted[record["trial_id"]], record["seconds"]))
        self.ended.add(record.get("trial_id"))
        self.running.pop(record.get("trial_id"), None)

    def remaining_seconds(self, wall: float | None = None) -> float | None:
        """The trials not ended, each by its predicted seconds, else by its
        FLOPs as the finished ones took theirs (a running one less the time
        it has run), over the trials at once; without either, the mean trial
        time x trials left. None before anything can tell."""
        fit = _fit(self.measured)
        left = [trial for trial in self.predicted if trial not in self.ended]
        each = [self.seconds.get(trial, fit and fit[0] + fit[1] * self.predicted[trial]) for trial in left]
        if self.predicted and None not in each:
            wall = time.time() if wall is None else wall
            ran = {trial: wall - where["since"] for trial, where in self.running.items()}
            rest = sum(max(0.0, seconds - ran.get(trial, 0.0)) for trial, seconds in zip(left, each))
            return rest / max(1, self.parallel)
        if not self.trial_seconds:
            return None
        mean = sum(self.trial_seconds) / len(self.trial_seconds)
        return mean * (self.total - self.done) / max(1, self.parallel)

    def frozen_line(self) -> str:
        """How often the run computed frozen inputs, for which backbones, for how many trials ("" if never)."""
        return _frozen_summary(self.frozen, self.frozen_users) if self.frozen else ""

    def render(self, now: float | None = None):
        now = time.monotonic() if now is None else now
        remaining = self.remaining_seconds()
        summary = Text(
            f"{self.done}/{self.total} done · {len(self.running)} running · {self.failed} failed · "
            f"elapsed {_clock(now - self.started)} · "
            + (f"about {_clock(remaining)} left" if remaining is not None else "estimate to come")
            + ("\n" + self.frozen_line() if self.frozen else "")
        )
        if not self.running:
            return summary
        table = Table(box=None, pad_edge=False)
        for header in ("running", "node", "GPU", "for"):
            table.add_column(header)
        wall = time.time()
        for trial_id, where in sorted(self.running.items()):
            table.add_row(trial_id, where["node"][:12], ",".join(where["gpus"]) or "-", _clock(wall - where["since"]))
        return Group(summary, table)


def early_answer(backbone: str, summary: dict, trials: int, trial_seconds: float | None) -> str:
    """The run's first answer for a backbone, from its frozen inputs, before
    any trial: what its features give a linear model, and how long its
    trials will take by the protocol at that pass's speed (estimate.py;
    None: it told no speed)."""
    if "error" in summary:
        return f"early answer, {backbone}: none (its frozen inputs failed: {summary['error']})"
    line = (
        f"early answer, {backbone}: a ridge probe's validation accuracy {summary['ridge_val_accuracy']:.3f}, "
        f"LogME {summary['logme']:.3f} (features at {summary['feature_images_per_sec']:.1f} images/s, "
        f"{summary['seconds']:.0f} s)"
    )
    if trial_seconds:
        line += f"; its {trials} trial(s): about {_clock(trial_seconds)} by the protocol at this speed"
    return line


def _fit(measured: list) -> tuple[float, float] | None:
    """(fixed seconds, seconds per FLOP) of seconds = fixed + FLOPs x rate
    over (FLOPs, seconds): least squares where it gives both at least 0;
    else through the origin. None without a measurement."""
    if not measured:
        return None
    flops, seconds = [m[0] for m in measured], [m[1] for m in measured]
    mean_flops, mean_seconds = sum(flops) / len(flops), sum(seconds) / len(seconds)
    spread = sum((f - mean_flops) ** 2 for f in flops)
    if spread > 0:
        rate = sum((f - mean_flops) * (s - mean_seconds) for f, s in measured) / spread
        if rate > 0 and mean_seconds - rate * mean_flops >= 0:
            return mean_seconds - rate * mean_flops, rate
    return 0.0, sum(seconds) / max(sum(flops), 1.0)


def _frozen_summary(computations: dict, users: int) -> str:
    backbones = sorted(set(computations.values()))
    return (
        f"frozen inputs: {len(computations)} computation(s) for {len(backbones)} backbone(s) "
        f"({', '.join(backbones)}), used by {users} trial(s)"
    )


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
