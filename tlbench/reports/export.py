"""A run's trials where other tools look for them, rebuilt with its report, with the registry's figures each shows
(figures.FIGURES): `trials.csv`, one row per trial, for csv, pandas and spreadsheets; `tensorboard/`, one HParams
session per trial (its choices as hparams, its figures as metrics, its validation curves as scalars). TensorFlow-free
(this runs in the driver), from the records alone (no clock: a re-render writes the same bytes), and `tensorboard/`
replaced whole, so TensorBoard never finds two copies of a session."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import psutil
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.summary.writer.record_writer import RecordWriter

from tlbench.errors import os_reason
from tlbench.figures import Figure, shown_in
from tlbench.files import write_bytes_atomic, write_text_atomic
from tlbench.record import ended_ok, finite, timestamp
from tlbench.reports.columns import sort_key
from tlbench.results import TENSORBOARD, TRIALS_CSV, RunContents

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
    writer = csv.writer(out := io.StringIO(), lineterminator="\n")
    writer.writerow(figure.field for figure in figures)
    for record in sorted(records, key=sort_key):  # as the report's table
        writer.writerow(None if isinstance(v := figure.get(record), (dict, list)) else v for figure in figures)
    return out.getvalue()


def write_tensorboard(run: RunContents, target: Path) -> None:
    """`target` rebuilt from the records: built beside it, then renamed into its place. An OSError names `target`."""
    for leftover in target.parent.glob(f".{target.name}-*"):  # of a render that crashed
        if not ((pid := leftover.name.rsplit("-", 2)[-2]).isdecimal() and psutil.pid_exists(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)
    prefix = f".{target.name}-{os.getpid()}-"
    try:
        with tempfile.TemporaryDirectory(prefix=prefix, dir=target.parent, ignore_cleanup_errors=True) as work:
            (built := Path(work, target.name)).mkdir()
            write_bytes_atomic(built / EVENTS_FILE, _event_file(_experiment_events(run)))
            for trial in run.records:
                name = str(trial["trial_id"]).replace(os.sep, "_")  # a folder name: no separator, nothing hidden
                (session := built / ("_" + name if name.startswith(".") or not name else name)).mkdir(exist_ok=True)
                write_bytes_atomic(session / EVENTS_FILE, _event_file(_session_events(run, trial)))
            if target.exists():
                os.rename(target, Path(work, "old"))  # removed with the temporary folder
            os.rename(built, target)
    except OSError as error:
        raise OSError(error.errno, os_reason(error), str(target)) from None


def _experiment_events(run: RunContents) -> list:
    """The HParams experiment, without value domains, which would hide other run folders' sessions under --logdir."""
    differs = {f.field for f in shown_in("hparam") if len({_hparam(f, r) for r in run.records}) > 1}  # listed first
    kinds = {True: api_pb2.DATA_TYPE_FLOAT64, False: api_pb2.DATA_TYPE_STRING}  # by Figure.number
    hparams = [
        api_pb2.HParamInfo(name=f.field, display_name=f.hparam, type=kinds[f.number], differs=f.field in differs)
        for f in shown_in("hparam")
    ]
    metrics = [api_pb2.MetricInfo(name={"tag": f.field}, display_name=f.metric) for f in shown_in("metric")]
    created = min(filter(None, (timestamp(r.get("started_at")) for r in run.records)), default=0.0)
    experiment = api_pb2.Experiment(hparam_infos=hparams, metric_infos=metrics, time_created_secs=created)
    return [_summary_event(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment), created)]


def _session_events(run: RunContents, trial: Mapping) -> list:
    start, end = (timestamp(trial.get(moment)) or 0.0 for moment in ("started_at", "finished_at"))
    hparams = {figure.field: value for figure in shown_in("hparam") if (value := _hparam(figure, trial)) is not None}
    metrics = [(f.field, value) for f in shown_in("metric") if (value := finite(f.get(trial))) is not None]
    group = f"{run.run_dir.name}/{trial['trial_id']}"  # its dashboard name; the run id keeps run folders apart
    status = api_pb2.STATUS_SUCCESS if ended_ok(trial) else api_pb2.STATUS_FAILURE
    ended = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end or start)
    return [
        event_pb2.Event(wall_time=start, summary=summary_v2.hparams_pb(hparams, trial_id=group, start_time_secs=start)),
        *(event_pb2.Event(wall_time=end or start, step=0, summary=scalar_pb(tag, value)) for tag, value in metrics),
        *_curves(trial, start),
        _summary_event(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=ended), end),
    ]


def _curves(trial: Mapping, start: float):
    """The validation curves' scalars: each learning rate tried's, and the chosen one's (final stage) as `val_curve`."""
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
    writer = RecordWriter(out := io.BytesIO())
    for event in (event_pb2.Event(wall_time=events[0].wall_time, file_version="brain.Event:2"), *events):
        writer.write(event.SerializeToString(deterministic=True))  # maps (the hparams) in one order: the same bytes
    return out.getvalue()


def _hparam(figure: Figure, trial: Mapping):
    """A number, or text as the figure's table cell shows it (`weights`: its kind)."""
    value = figure.get(trial)
    if not figure.number and isinstance(value, str) and value:
        return (figure.column.format if figure.column else str)(value)  # str: a Status as "ok"
    return finite(value) if figure.number else None
