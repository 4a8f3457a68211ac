"""A run analysed once, as read: every renderer (terminal, Markdown, HTML, plots, trials.csv,
TensorBoard, compare) reads the `RunAnalysis` and none recomputes a figure of it."""

from __future__ import annotations

from dataclasses import dataclass

from tlbench import stability
from tlbench.device_memory import DeviceFit, device_fits, found_batches
from tlbench.reports.configs import Configuration, MemorySlope, configurations, memory_slopes
from tlbench.reports.decide import Recommendation, recommend
from tlbench.reports.ladder import Ladder, ladders
from tlbench.reports.timing import Decision, TimeSplit, decision, time_split
from tlbench.results import RunContents


@dataclass(frozen=True)
class RunAnalysis:
    run: RunContents  # the folder, env.json, the warnings met while reading it
    records: list[dict]  # the trials' last records, judged across trials too (stability.judged)
    configurations: list[Configuration]  # over their seeds, most accurate first; those without a result last
    ladders: list[Ladder]  # each backbone's rungs of trainable depth
    recommendation: Recommendation | None  # None when no configuration has all its figures
    memory_fits: list[MemorySlope]  # memory against batch size per backbone x mode
    device_fits: list[DeviceFit]  # the largest batch that fits each device size, per backbone x mode
    found_batches: list[str]  # --batch-size max: per backbone x mode, the batch found against the prediction
    unstable_lines: list[str]  # one per unstable figure of a trial, with why
    smoke_trials: list[str]  # trial ids whose timed figures are smoke figures
    decision: Decision | None  # when the early and the full answers came, whether the early ranking held
    time_split: TimeSplit | None  # where the wall time went; both None for a run that recorded no start

    @property
    def run_title(self) -> str:
        return f"tlbench run {self.run.run_dir.name}"

    @property
    def with_results(self) -> list[Configuration]:
        return [c for c in self.configurations if c.test_mean is not None]

    @property
    def compared_ladders(self) -> list[Ladder]:
        return [ladder for ladder in self.ladders if ladder.comparable]


def analyse(run: RunContents) -> RunAnalysis:
    records = stability.judged(run.records)  # the one cross-trial judgement of a run
    configs = configurations(records)
    return RunAnalysis(
        run=run,
        records=records,
        configurations=configs,
        ladders=ladders(records, configs),
        recommendation=recommend(configs),
        memory_fits=memory_slopes(records),
        device_fits=device_fits(records),
        found_batches=found_batches(records),
        unstable_lines=stability.unstable_lines(records),
        smoke_trials=stability.smoke_trials(records),
        decision=decision(run, records, configs),
        time_split=time_split(run, records),
    )
