"""A decision in minutes (reports/timing.py): when each backbone's early
answer came against the full answer, whether the early ranking held, where
the wall time went. Runs scripted here as a 2-core machine runs them, one
task at a time: each backbone's frozen computation first, then its trials;
their `frozen_inputs` made by the worker's own `frozen.record_fields`, every
record and env.json through their checked constructors. No TensorFlow, no Ray."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from records import trial
from reporting import analysed, render_markdown, write_report
from rich.console import Console

from tlbench import __version__, formats, record, results, run_env
from tlbench.reports import terminal
from tlbench.reports.timing import REST, split_text
from tlbench.results import RunContents
from tlbench.worker import frozen as frozen_inputs

START = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
RUN_ID = "20261205T100000Z-lab-cpu"
MOBILENET, RESNET, EFFICIENTNET = "mobilenet_v2_035_128", "resnet_v2_50", "efficientnet_b0"
ONE_AT_A_TIME = {"address": "local", "nodes": 1, "cpus": 2, "gpus": 0, "trial_resources": {"num_cpus": 2}}
TWO_GPUS = {"address": "local", "nodes": 1, "cpus": 8, "gpus": 2, "trial_resources": {"num_gpus": 1, "num_cpus": 1}}


def _at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


@dataclass
class Backbone:
    """A backbone of a scripted run: its early answer and its trials' validation accuracies."""

    name: str
    ridge: float | None  # the early answer's; None: its frozen computation failed
    logme: float
    val: dict = field(default_factory=dict)  # mode -> validation accuracy per seed
    scale: float = 1.0  # its phases' seconds, times those of a small backbone
    weights: str = "tfhub:https://tfhub.dev/google/x/feature_vector/5"

    @property
    def trials(self) -> int:
        return sum(map(len, self.val.values()))


# A small backbone's trial, seconds per phase: transfer, and what finetune multiplies.
PHASES = {"load": 4.2, "costs": 0.01, "accuracy": 12.5, "timed_passes": 7.0, "peak_probe": 1.35}
FINETUNE = {"accuracy": 3.2, "timed_passes": 1.3}
OWN_FEATURES, SHARED_FEATURES = 3.0, 0.25  # a trial's feature_seconds: computed itself, or the shared ones checked
STARTUP, GAP, OVERHEAD = 25.0, 0.7, 1.2  # before the first task; between tasks; a trial's seconds outside its phases


def scripted(backbones: list[Backbone], cluster: dict = ONE_AT_A_TIME) -> RunContents:
    """The run, its tasks one after another: every frozen computation (a
    backbone of two trials or more), then the trials, backbone by backbone."""
    clock, computations, records = STARTUP, {}, []
    for b in backbones:
        if b.trials < 2:
            continue
        seconds = 16.0 * b.scale
        computation = {"computation": f"c-{b.name}", "node_id": "n1", "seconds": seconds}
        computation["finished_at"] = _at(clock + seconds)
        if b.ridge is None:
            computation["error"] = "RuntimeError: asked to fail"
        else:
            computation.update(logme=b.logme, ridge_val_accuracy=b.ridge, feature_images_per_sec=384.0 / b.scale)
        computations[b.name] = computation
        clock += seconds + GAP
    for b in backbones:
        shared = computations.get(b.name)
        use = None if shared is None or "error" in shared else {"activations": None}
        note = "" if use else "not shared: computed by the trial"
        for mode, accuracies in b.val.items():
            for seed, accuracy in enumerate(accuracies):
                longer = FINETUNE if mode == "finetune" else {}
                phases = {k: v * b.scale * longer.get(k, 1.0) for k, v in PHASES.items()}
                seconds = sum(phases.values()) + OVERHEAD
                records.append(
                    record.make(
                        **trial(b.name, mode, 16, seed, weights=b.weights),
                        val_accuracy=accuracy,
                        test_accuracy=accuracy - 0.02,
                        seconds=seconds,
                        started_at=_at(clock),
                        finished_at=_at(clock + seconds),
                        phase_seconds=phases,
                        feature_seconds=(SHARED_FEATURES if use else OWN_FEATURES) * b.scale,
                        frozen_inputs=frozen_inputs.record_fields(shared, use, note),
                    )
                )
                clock += seconds + GAP
    start = START.isoformat(timespec="milliseconds")
    env = run_env.make(started_at=start, cluster=cluster, host="lab", versions={"tlbench": __version__})
    return RunContents(Path(RUN_ID), records=json.loads(json.dumps(records)), env=env)


def held_run() -> list[Backbone]:
    """Two backbones, two modes, two seeds: MobileNet first early and in the trials."""
    return [
        Backbone(MOBILENET, 0.953, 1.21, {"transfer": (0.961, 0.953), "finetune": (0.969, 0.977)}),
        Backbone(RESNET, 0.914, 0.87, {"transfer": (0.922, 0.930), "finetune": (0.945, 0.938)}, scale=4.0),
    ]


def test_the_early_answers_come_minutes_before_the_full_answer_and_the_ranking_held():
    decision = analysed(scripted(held_run())).decision
    assert [(a.backbone, a.early_rank, a.final_rank) for a in decision.answers] == [(MOBILENET, 1, 1), (RESNET, 2, 2)]
    mobilenet, resnet = decision.answers
    assert mobilenet.answered_after == pytest.approx(STARTUP + 16.0)
    assert resnet.answered_after == pytest.approx(STARTUP + 16.0 + GAP + 64.0)
    assert (mobilenet.best.mode, mobilenet.best.val_mean) == ("finetune", pytest.approx(0.973))
    assert decision.wall_seconds > 5 * resnet.answered_after  # the full answer: many minutes after the last early one
    assert decision.swapped == [] and decision.unknown is None
    report = render_markdown(scripted(held_run()))
    assert "The early ranking held." in report
    assert f"| {MOBILENET} | 0.953 | 1.210 | 1 | +0:41 | finetune, batch 16 | 0.973 ± 0.006 | 1 |" in report
    assert f"| {RESNET} | 0.914 | 0.870 | 2 | +1:46 | finetune, batch 16 | 0.942 ± 0.005 | 2 |" in report
    assert (
        "The first early answer came at +0:41, the full answer as the last trial ended, at +15:18: the run's wall "
        "time. The early ranking held." in report
    )


def test_a_pair_that_swapped_is_named():
    backbones = held_run()
    backbones[1].val["finetune"] = (0.984, 0.992)  # ResNet fine-tuned beats MobileNet in the trials
    decision = analysed(scripted(backbones)).decision
    assert decision.swapped == [(MOBILENET, RESNET)]
    assert [(a.backbone, a.early_rank, a.final_rank) for a in decision.answers] == [(MOBILENET, 1, 2), (RESNET, 2, 1)]
    assert (
        f"The early ranking did not hold: {MOBILENET} and {RESNET} swapped ({MOBILENET} above early, {RESNET} above "
        "in the trials)." in render_markdown(scripted(backbones))
    )


@pytest.mark.parametrize("mobilenet_logme, held", [(1.3, True), (0.5, False)])
def test_equal_ridge_accuracies_are_ranked_by_logme(mobilenet_logme, held):
    """Both probes at 0.953: the higher LogME ranks first; the trials put MobileNet first."""
    backbones = held_run()
    backbones[0].logme, backbones[1].ridge = mobilenet_logme, backbones[0].ridge
    decision = analysed(scripted(backbones)).decision
    first = MOBILENET if held else RESNET
    assert [a.backbone for a in decision.answers if a.early_rank == 1] == [first]
    assert (decision.swapped == []) == held


def test_one_backbone_cant_tell():
    run = scripted(held_run()[:1])
    decision = analysed(run).decision
    assert decision.unknown == "the run has one backbone, nothing to rank"
    report = render_markdown(run)
    assert "Can't tell whether the early ranking held: the run has one backbone, nothing to rank." in report
    assert "## Where the time went" in report


def test_a_backbone_without_an_early_answer_cant_tell_and_the_others_are_still_compared():
    failed = Backbone(EFFICIENTNET, None, 0.0, {"transfer": (0.9, 0.91)})  # its frozen computation failed
    alone = Backbone("inception_v3", 0.8, 0.1, {"transfer": (0.95,)}, scale=2.0)  # one trial: computes its own
    decision = analysed(scripted([*held_run(), failed, alone])).decision
    assert {a.backbone: a.missing for a in decision.answers if a.missing} == {
        EFFICIENTNET: "no early answer (its frozen computation failed)",
        "inception_v3": "no early answer (a single trial computes its own features)",
    }
    assert [a.backbone for a in decision.answers if a.early_rank and a.final_rank] == [MOBILENET, RESNET]
    report = render_markdown(scripted([*held_run(), failed, alone]))
    assert (
        "Can't tell whether the early ranking held: inception_v3 has no early answer (a single trial computes its "
        f"own features); {EFFICIENTNET} has no early answer (its frozen computation failed); among {MOBILENET}, "
        f"{RESNET} it held." in report
    )
    assert "| inception_v3 | - | - | - | - | transfer, batch 16 | 0.950 | 2 |" in report


def test_no_accuracy_cant_tell():
    run = scripted(held_run())
    run.records = [{**r, "status": "oom", "val_accuracy": None, "test_accuracy": None} for r in run.records]
    assert "Can't tell whether the early ranking held: no trial recorded a validation accuracy." in render_markdown(run)


def test_stand_in_weights_say_both_rankings_are_of_random_networks():
    backbones = held_run()
    for b in backbones:
        b.weights = "standin:random-init"
    report = render_markdown(scripted(backbones))
    said = f"{MOBILENET}, {RESNET} ran on random stand-in weights: both rankings of them are of random networks"
    assert said in report


def test_a_run_that_recorded_no_start_leaves_both_sections_out():
    run = scripted(held_run())
    for old in (
        RunContents(run.run_dir, records=run.records, env={"host": "lab"}),  # env.json of an earlier version
        RunContents(run.run_dir, records=[{k: v for k, v in r.items() if k != "finished_at"} for r in run.records]),
        RunContents(run.run_dir, records=[], env=run.env),
    ):
        analysis = analysed(old)
        assert analysis.decision is None and analysis.time_split is None
        report = render_markdown(old)
        assert "How long the decision took" not in report and "Where the time went" not in report
    # Records of an earlier version (no frozen_inputs), env.json of this one: no early answer, nothing breaks.
    run.records = [{k: v for k, v in r.items() if k != "frozen_inputs"} for r in run.records]
    assert "has no early answer (no shared frozen computation)" in render_markdown(run)


def test_the_time_split_adds_up_to_the_wall_time_and_counts_each_computation_once():
    run = scripted(held_run())
    split = analysed(run).time_split
    assert split.slots == 1
    rows = {row["name"]: row for row in split.rows}
    assert sum(rows[name]["all"] for name in (MOBILENET, RESNET, REST)) == pytest.approx(split.wall_seconds)
    assert rows["total"]["all"] == pytest.approx(split.wall_seconds)
    last = run.records[-1]
    assert split.wall_seconds == pytest.approx(
        datetime.fromisoformat(last["finished_at"]).timestamp() - START.timestamp()
    )
    # MobileNet's features: its one computation (16 s, shared by 4 trials) once, and each trial's own check.
    assert rows[MOBILENET]["features"] == pytest.approx(16.0 + 4 * SHARED_FEATURES)
    assert rows[RESNET]["features"] == pytest.approx(64.0 + 4 * 4 * SHARED_FEATURES)
    mobilenet = [r for r in run.records if r["backbone"] == MOBILENET]
    searches = sum(r["phase_seconds"]["accuracy"] - r["feature_seconds"] for r in mobilenet)
    assert rows[MOBILENET]["searches"] == pytest.approx(searches)
    timed = sum(r["phase_seconds"]["timed_passes"] + r["phase_seconds"]["peak_probe"] for r in mobilenet)
    assert rows[MOBILENET]["timed passes"] == pytest.approx(timed)
    # What is left: the start-up, the gaps between tasks and each trial's seconds outside its phases.
    assert split.phases[REST] == pytest.approx(STARTUP + 9 * GAP + 8 * OVERHEAD)
    assert sum(rows[name]["share"] for name in (MOBILENET, RESNET, REST)) == pytest.approx(1.0)
    assert split_text(split)[1] == (
        "The largest part is **searches**: 520 s of 918 s (56.6%); then timed passes 20.5%, features 9.3%, "
        "load 9.1%, scheduling, start-up 4.5%, graph costs 0.0%."
    )


def test_trials_at_once_split_the_slots_time_and_say_how():
    run = scripted(held_run(), cluster=TWO_GPUS)  # scripted one at a time: the second slot stood idle
    split = analysed(run).time_split
    assert split.slots == 2 and split.total == pytest.approx(2 * split.wall_seconds)
    rows = {row["name"]: row for row in split.rows}
    assert sum(rows[name]["all"] for name in (MOBILENET, RESNET, REST)) == pytest.approx(2 * split.wall_seconds)
    assert split.phases[REST] == pytest.approx(split.wall_seconds + STARTUP + 9 * GAP + 8 * OVERHEAD)
    report = render_markdown(run)
    assert "Up to 2 trials ran at once (env.json's `cluster`): the total is the wall time times 2 trial slots" in report


def test_both_sections_in_report_md_and_a_line_each_in_the_terminal(tmp_path):
    run = scripted(held_run())
    folder = tmp_path / RUN_ID
    folder.mkdir()
    (folder / results.ENV).write_text(json.dumps(run.env))
    (folder / results.TRIALS).write_text("".join(json.dumps(r) + "\n" for r in run.records))
    read = results.read_run(folder)
    assert read.warnings == []  # every new field of its declared type
    markdown = write_report(read)["report.md"].read_text()
    titles = ("How long the decision took", "Where the time went")
    decision, split = (markdown.split(f"## {title}\n")[1].split("\n## ")[0] for title in titles)
    columns = ("ridge val acc", "LogME", "early rank", "answered at", "best configuration", "its val acc", "final rank")
    assert f"| backbone | {' | '.join(columns)} |" in decision
    assert "| backbone | load s | graph costs s | features s | searches s | timed passes s | all s | share |" in split
    assert "The largest part is **searches**" in split
    assert (
        markdown.index("## How long the decision took")
        < markdown.index("## Trials")
        < markdown.index("## Where the time went")
    )
    console = Console(file=io.StringIO(), width=80, color_system=None)
    terminal.print_report(analysed(read), console)
    text = console.file.getvalue()  # the verdict alone, with when the answers came
    said = (
        "The first early answer came at +0:41, the full answer as the last trial ended, at +15:18: the run's wall "
        "time. The early ranking held."
    )
    assert said in " ".join(text.split()) and max(map(len, text.splitlines())) <= 80
    assert "ridge val acc" not in text and "graph costs" not in text


def test_the_worker_records_when_its_frozen_computation_ended_and_its_answer():
    ended = {"computation": "c1", "node_id": "n", "seconds": 16.0, "finished_at": _at(41), "logme": 1.2}
    answered = {**ended, "ridge_val_accuracy": 0.95, "feature_images_per_sec": 384.0, "features_via": "module"}
    answered.update(setup_seconds=4.5, top_share={"last_block": 0.25})  # what the early answer's time came from
    answered["features"] = {}
    shared = frozen_inputs.record_fields(answered, {"activations": None}, "", probe_shared=True)
    fields = record.make(**trial(MOBILENET, "transfer", 16, 0), frozen_inputs=shared)  # of the declared types
    assert fields["frozen_inputs"] == {
        "shared": True,
        "activations_shared": False,
        "probe_shared": True,
        **{k: v for k, v in answered.items() if k != "features"},
        "note": None,
    }
    failed = frozen_inputs.record_fields({**ended, "error": "E: x", "logme": None}, None, "failed")
    assert failed["finished_at"] == _at(41) and failed["ridge_val_accuracy"] is None and failed["logme"] is None
    assert set(frozen_inputs.record_fields(None, None, "")) == set(failed)  # one trial: every field, null


def test_env_json_records_the_runs_start_as_records_write_a_moment():
    now = record.utc_now()
    assert datetime.fromisoformat(now).tzinfo == timezone.utc and len(now.split(".")[1]) == len("000+00:00")
    assert run_env.make(started_at=now)["started_at"] == now
    with pytest.raises(TypeError, match="started_at"):
        run_env.make(started_at=1.5)


@pytest.mark.parametrize("seconds, shown", [(0, "0:00"), (41.4, "0:41"), (130, "2:10"), (3725, "1:02:05")])
def test_times_after_the_start_read_as_a_clock(seconds, shown):
    assert formats.clock(seconds) == shown
