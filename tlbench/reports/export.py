"""A run's trials where other tools look for them, rebuilt with its report:

- `trials.csv`: one row per trial (its last record), ids and figures as plain
  numbers, for `csv`, pandas and spreadsheets;
- `tensorboard/`: event files for `tensorboard --logdir`: one HParams session
  per trial (`tensorboard/<trial_id>/`: its choices as hparams, its figures
  as metrics) and its validation curves per epoch as scalars.

Only TensorBoard's TensorFlow-free pieces are used (protos, the hparams and
scalar summary builders, the record writer): this runs in the driver. The
event files are made from the records alone (times from the records, no
clock), so a re-render writes the same bytes; they are built in a temporary
folder that then takes the place of `tensorboard/`, so a re-render never
leaves two copies of a session where TensorBoard looks.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from tlbench import stability
from tlbench.errors import os_reason
from tlbench.files import write_bytes_atomic, write_text_atomic
from tlbench.reports.columns import sort_key
from tlbench.results import TENSORBOARD, TRIALS_CSV, RunContents

# trials.csv: record fields (or figures derived from them), in this order.
CSV_FIELDS = (
    *("trial_id", "backbone", "mode", "batch_size", "seed", "dataset", "weights", "device", "status", "error"),
    *("budget", "batch_norm", "learning_rate", "train_accuracy", "val_accuracy", "test_accuracy"),
    *("train_images_per_sec", "train_images_per_sec_q1", "train_images_per_sec_q3"),
    *("infer_images_per_sec", "infer_images_per_sec_q1", "infer_images_per_sec_q3"),
    *("train_mfu", "peak_memory_bytes", "activation_memory_bytes", "predicted_activation_bytes"),
    *("time_to_accuracy_seconds", "seconds", "timing_quality", "unstable"),
)

# HParams: (record field, shown as, is a number). `weights` is its kind: tfhub / local / standin.
HPARAMS = (
    ("backbone", "backbone", False),
    ("mode", "mode", False),
    ("batch_size", "batch size", True),
    ("seed", "seed", True),
    ("dataset", "dataset", False),
    ("weights", "weights", False),
    ("budget", "budget", False),
    ("batch_norm", "backbone BatchNorm", False),
    ("learning_rate", "learning rate chosen", True),
    ("device", "device", False),
    ("status", "status", False),
)

# HParams metrics: (record field, shown as), each a scalar at step 0 of the trial's session.
METRICS = (
    ("train_accuracy", "train accuracy"),
    ("val_accuracy", "validation accuracy"),
    ("test_accuracy", "test accuracy"),
    ("train_images_per_sec", "train images/s"),
    ("infer_images_per_sec", "inference images/s"),
    ("peak_memory_bytes", "peak memory bytes"),
    ("activation_memory_bytes", "step memory bytes"),
    ("train_mfu", "train MFU"),
    ("time_to_accuracy_seconds", "seconds to accuracy"),
    ("seconds", "trial seconds"),
)

# A validation curve's points (record.CurvePoint), one scalar tag each, step = epoch.
CURVE_POINTS = ("val_accuracy", "val_loss", "train_loss")
EVENTS_FILE = "events.out.tfevents.tlbench"  # TensorBoard reads files whose names hold "tfevents"


def write_exports(run: RunContents, staging: Path) -> None:
    """trials.csv into `staging` (report.write_report's folder of files that
    replace the run folder's together); tensorboard/ replaced in the run folder."""
    write_text_atomic(staging / TRIALS_CSV, trials_csv(run.records))
    write_tensorboard(run, run.run_dir / TENSORBOARD)


# ------------------------------------------------------------ trials.csv


def trials_csv(records) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in sorted(stability.judged(records), key=sort_key):  # as the report's table
        writer.writerow({name: _csv_value(record, name) for name in CSV_FIELDS})
    return out.getvalue()


def _csv_value(record: dict, name: str):
    if name.endswith(("_q1", "_q3")):  # the interquartile range over the timed windows
        timing = record.get(name[: name.index("_")] + "_timing")
        value = timing.get(f"images_per_sec_{name[-2:]}") if isinstance(timing, dict) else None
    elif name == "unstable":
        value = ";".join(sorted(stability.unstable(record))) or None
    elif name == "timing_quality":
        value = stability.record_quality(record)
    else:
        value = record.get(name)
    if value is None or isinstance(value, (dict, list)):
        return ""  # missing: pandas reads NaN
    return str(value)  # a float's shortest exact text; Status as "ok"


# ------------------------------------------------------------ TensorBoard


def write_tensorboard(run: RunContents, target: Path) -> None:
    """`target` rebuilt from the records: built beside it, then renamed into
    its place. An OSError names `target`."""
    for leftover in target.parent.glob(f".{target.name}-*"):  # of a render that crashed
        if not _pid_alive(leftover.name.rsplit("-", 2)[-2]):
            shutil.rmtree(leftover, ignore_errors=True)
    prefix = f".{target.name}-{os.getpid()}-"
    built = old = None
    try:
        built = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        built.chmod(0o755)  # mkdtemp's 0700 would hide the folder from the run folder's other readers
        files = {Path(EVENTS_FILE): _event_file(_experiment_events(run))}
        for trial in run.records:
            files[Path(_session_folder(trial), EVENTS_FILE)] = _event_file(_session_events(run, trial))
        for name, data in files.items():
            (built / name).parent.mkdir(exist_ok=True)
            write_bytes_atomic(built / name, data)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
            os.rename(target, old / target.name)
        os.rename(built, target)
        built = None
    except OSError as error:
        raise OSError(error.errno, os_reason(error), str(target)) from None
    finally:
        for folder in (built, old):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def _pid_alive(text: str) -> bool:
    try:
        os.kill(int(text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _session_folder(trial: dict) -> str:
    """A folder name from the trial id: no separator, nothing hidden."""
    name = str(trial["trial_id"]).replace(os.sep, "_")
    return "_" + name if name.startswith(".") or not name else name


def _experiment_events(run: RunContents) -> list:
    """The HParams experiment: which hparams and metrics a session has. No
    value domains, so `--logdir` over several run folders filters none of
    their sessions out (the dashboard takes one run folder's experiment)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    values = {field: {_hparam(field, r.get(field), number) for r in run.records} for field, _, number in HPARAMS}
    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=field,
                display_name=shown,
                type=api_pb2.DATA_TYPE_FLOAT64 if number else api_pb2.DATA_TYPE_STRING,
                differs=len(values[field]) > 1,  # the dashboard lists these first
            )
            for field, shown, number in HPARAMS
        ],
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=field), display_name=shown) for field, shown in METRICS
        ],
        time_created_secs=min(filter(None, (_time(r.get("started_at")) for r in run.records)), default=0.0),
    )
    data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
    return [_summary_event(metadata.EXPERIMENT_TAG, data, experiment.time_created_secs)]


def _session_events(run: RunContents, trial: dict) -> list:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    start, end = _time(trial.get("started_at")), _time(trial.get("finished_at"))
    hparams = {field: _hparam(field, trial.get(field), number) for field, _, number in HPARAMS}
    # The group is the session's name in the dashboard: the run id keeps trials of several run folders apart.
    group = f"{run.run_dir.name}/{trial['trial_id']}"
    events = [
        event_pb2.Event(
            wall_time=start,
            summary=summary_v2.hparams_pb(
                {k: v for k, v in hparams.items() if v is not None}, trial_id=group, start_time_secs=start
            ),
        )
    ]
    events += [
        event_pb2.Event(wall_time=end or start, step=0, summary=scalar_pb(field, trial[field]))
        for field, _ in METRICS
        if _number(trial.get(field))
    ]
    events += [
        event_pb2.Event(wall_time=start + seconds, step=epoch, summary=scalar_pb(tag, value))
        for tag, epoch, seconds, value in _curves(trial)
    ]
    ok = trial.get("status") == "ok"
    ended = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_SUCCESS if ok else api_pb2.STATUS_FAILURE, end_time_secs=end or start
    )
    events.append(
        _summary_event(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=ended), end)
    )
    return events


def _curves(trial: dict):
    """(tag, epoch, training seconds, value) of every validation curve point:
    `val_curve/...` the chosen learning rate's (of the final stage), and
    `lr_search/lr=X/...`, `probe_lr_search/lr=X/...` each learning rate tried."""
    for search in ("lr_search", "probe_lr_search"):
        candidates = [c for c in trial.get(search) or [] if isinstance(c.get("val_curve"), list)]
        for candidate in candidates:
            rate = candidate.get("learning_rate", candidate.get("base_learning_rate"))
            prefixes = [f"{search}/lr={rate:g}" if _number(rate) else f"{search}/{candidates.index(candidate)}"]
            chosen = candidate.get("learning_rate") == trial.get("learning_rate") or len(candidates) == 1
            if search == "lr_search" and chosen:
                prefixes.append("val_curve")
            for prefix in prefixes:
                yield from _points(prefix, candidate["val_curve"])


def _points(prefix: str, curve: list):
    last_epoch = -1
    for point in sorted((p for p in curve if _number(p.get("epoch"))), key=lambda p: p["epoch"]):
        if point["epoch"] == last_epoch:  # a step twice would make TensorBoard drop the later points
            continue
        last_epoch, seconds = point["epoch"], point.get("train_seconds")
        for name in CURVE_POINTS:
            if _number(point.get(name)):
                yield f"{prefix}/{name}", point["epoch"], seconds if _number(seconds) else 0.0, point[name]


def _summary_event(tag: str, plugin_data, wall_time: float):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return event_pb2.Event(wall_time=wall_time, summary=summary)


def _event_file(events: list) -> bytes:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    first = event_pb2.Event(wall_time=events[0].wall_time, file_version="brain.Event:2")
    out = io.BytesIO()
    writer = RecordWriter(out)
    for event in (first, *events):
        writer.write(event.SerializeToString())
    return out.getvalue()


def _hparam(field: str, value, number: bool):
    if number:
        return value if _number(value) else None
    if not isinstance(value, str) or not value:
        return None
    return value.split(":", 1)[0] if field == "weights" else str(value)  # str: a Status as "ok"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _time(text) -> float:
    """Seconds since the epoch of an ISO 8601 time; 0.0 when there is none."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0
