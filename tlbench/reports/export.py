"""A run's trials where other tools look for them, rebuilt with its report, each with the registry's figures it shows
(figures.FIGURES): `trials.csv`, one row per trial (its last record), ids and figures as plain numbers, for `csv`,
pandas and spreadsheets; `tensorboard/`, event files for `tensorboard --logdir`: one HParams session per trial
(`tensorboard/<trial_id>/`: its choices as hparams, its figures as metrics), its validation curves per epoch as scalars.

Only TensorBoard's TensorFlow-free pieces are used (protos, the hparams and scalar summary builders, the record
writer): this runs in the driver. The event files are made from the records alone (times from the records, no
clock), so a re-render writes the same bytes; they are built in a temporary folder that then takes the place of
`tensorboard/`, so a re-render never leaves two copies of a session where TensorBoard looks."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import psutil
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.summary.writer.record_writer import RecordWriter

from tlbench.errors import os_reason
from tlbench.figures import Figure, shown_in
from tlbench.files import write_bytes_atomic, write_text_atomic
from tlbench.record import ended_ok, finite
from tlbench.reports.columns import sort_key
from tlbench.results import TENSORBOARD, TRIALS_CSV, RunContents

# HPARAMS: (field, shown as, is a number); METRICS: (field, shown as), each a scalar at step 0.
CSV_FIELDS = tuple(figure.field for figure in shown_in("csv"))
HPARAMS = tuple((figure.field, figure.hparam, figure.number) for figure in shown_in("hparam"))
METRICS = tuple((figure.field, figure.metric) for figure in shown_in("metric"))
EVENTS_FILE = "events.out.tfevents.tlbench"  # TensorBoard reads files whose names hold "tfevents"


def write_exports(analysis, staging: Path) -> None:
    """trials.csv into `staging` (the files report.write_report replaces together); tensorboard/ in the run folder."""
    write_text_atomic(staging / TRIALS_CSV, trials_csv(analysis.records))
    write_tensorboard(analysis.run, analysis.run.run_dir / TENSORBOARD)


def trials_csv(records) -> str:
    """`records`: judged across trials (analysis.RunAnalysis.records), the unstable column holds those findings. A
    figure as its str() (a float's shortest exact text, a Status as "ok"); missing, an empty cell (pandas: NaN)."""
    figures = shown_in("csv")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(figure.field for figure in figures)
    for record in sorted(records, key=sort_key):  # as the report's table
        writer.writerow(None if isinstance(v := figure.get(record), (dict, list)) else v for figure in figures)
    return out.getvalue()


def write_tensorboard(run: RunContents, target: Path) -> None:
    """`target` rebuilt from the records: built beside it, then renamed into its place. An OSError names `target`."""
    for leftover in target.parent.glob(f".{target.name}-*"):  # of a render that crashed
        pid = leftover.name.rsplit("-", 2)[-2]
        if not (pid.isdecimal() and psutil.pid_exists(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)
    prefix = f".{target.name}-{os.getpid()}-"
    try:
        with tempfile.TemporaryDirectory(prefix=prefix, dir=target.parent, ignore_cleanup_errors=True) as work:
            built = Path(work, target.name)
            built.mkdir()
            write_bytes_atomic(built / EVENTS_FILE, _event_file(_experiment_events(run)))
            for trial in run.records:
                name = str(trial["trial_id"]).replace(os.sep, "_")  # a folder name: no separator, nothing hidden
                session = built / ("_" + name if name.startswith(".") or not name else name)
                session.mkdir(exist_ok=True)
                write_bytes_atomic(session / EVENTS_FILE, _event_file(_session_events(run, trial)))
            if target.exists():
                os.rename(target, Path(work, "old"))  # removed with the temporary folder
            os.rename(built, target)
    except OSError as error:
        raise OSError(error.errno, os_reason(error), str(target)) from None


def _experiment_events(run: RunContents) -> list:
    """The HParams experiment: which hparams and metrics a session has. No value domains, so `--logdir` over
    several run folders filters none of their sessions out (the dashboard takes one run folder's experiment)."""
    hparams = [
        api_pb2.HParamInfo(
            name=figure.field,
            display_name=figure.hparam,
            type=api_pb2.DATA_TYPE_FLOAT64 if figure.number else api_pb2.DATA_TYPE_STRING,
            differs=len({_hparam(figure, r) for r in run.records}) > 1,  # the dashboard lists these first
        )
        for figure in shown_in("hparam")
    ]
    metrics = [
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=f.field), display_name=f.metric) for f in shown_in("metric")
    ]
    created = min(filter(None, (_time(r.get("started_at")) for r in run.records)), default=0.0)
    experiment = api_pb2.Experiment(hparam_infos=hparams, metric_infos=metrics, time_created_secs=created)
    return [_summary_event(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment), created)]


def _session_events(run: RunContents, trial: Mapping) -> list:
    start, end = _time(trial.get("started_at")), _time(trial.get("finished_at"))
    hparams = {figure.field: value for figure in shown_in("hparam") if (value := _hparam(figure, trial)) is not None}
    metrics = [(f.field, value) for f in shown_in("metric") if (value := finite(f.get(trial))) is not None]
    # The group is the session's name in the dashboard: the run id keeps trials of several run folders apart.
    group = f"{run.run_dir.name}/{trial['trial_id']}"
    status = api_pb2.STATUS_SUCCESS if ended_ok(trial) else api_pb2.STATUS_FAILURE
    ended = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end or start)
    return [
        event_pb2.Event(wall_time=start, summary=summary_v2.hparams_pb(hparams, trial_id=group, start_time_secs=start)),
        *(event_pb2.Event(wall_time=end or start, step=0, summary=scalar_pb(tag, value)) for tag, value in metrics),
        *_curves(trial, start),
        _summary_event(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=ended), end),
    ]


def _curves(trial: Mapping, start: float):
    """The validation curves' scalars, at the trial's start plus the training seconds so far: `val_curve/...` the
    chosen learning rate's (of the final stage), `lr_search/lr=X/...`, `probe_lr_search/lr=X/...` each one tried."""
    for search in ("lr_search", "probe_lr_search"):
        candidates = [c for c in trial.get(search) or [] if isinstance(c.get("val_curve"), list)]
        for candidate in candidates:
            rate = candidate.get("learning_rate", candidate.get("base_learning_rate"))
            name = f"lr={rate:g}" if finite(rate) is not None else candidates.index(candidate)
            yield from _points(f"{search}/{name}", candidate["val_curve"], start)
            chosen = candidate.get("learning_rate") == trial.get("learning_rate") or len(candidates) == 1
            if search == "lr_search" and chosen:
                yield from _points("val_curve", candidate["val_curve"], start)


def _points(prefix: str, curve: list, start: float):
    """A curve's points (record.CurvePoint), one scalar tag per figure, step = epoch."""
    last_epoch = -1
    for point in sorted((p for p in curve if finite(p.get("epoch")) is not None), key=lambda p: p["epoch"]):
        if point["epoch"] == last_epoch:  # a step twice would make TensorBoard drop the later points
            continue
        last_epoch, at = point["epoch"], start + (finite(point.get("train_seconds")) or 0.0)
        for name in ("val_accuracy", "val_loss", "train_loss"):
            if (value := finite(point.get(name))) is not None:
                yield event_pb2.Event(wall_time=at, step=point["epoch"], summary=scalar_pb(f"{prefix}/{name}", value))


def _summary_event(tag: str, plugin_data, wall_time: float):
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return event_pb2.Event(wall_time=wall_time, summary=summary)


def _event_file(events: list) -> bytes:
    out = io.BytesIO()
    writer = RecordWriter(out)
    for event in (event_pb2.Event(wall_time=events[0].wall_time, file_version="brain.Event:2"), *events):
        writer.write(event.SerializeToString(deterministic=True))  # maps (the hparams) in one order: the same bytes
    return out.getvalue()


def _hparam(figure: Figure, trial: Mapping):
    """A number, or text as the figure's table cell shows it (`weights`: its kind)."""
    value = figure.get(trial)
    if not figure.number and isinstance(value, str) and value:
        return (figure.column.format if figure.column else str)(value)  # str: a Status as "ok"
    return finite(value) if figure.number else None


def _time(text) -> float:
    """Seconds since the epoch of an ISO 8601 time; 0.0 when there is none."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0
