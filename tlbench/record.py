"""The trial record: one definition of what a line of trials.jsonl holds,
one constructor the trial workers and the driver build records with, and one
checker the reader passes every line through.

A record is a plain JSON object (a `TrialRecord` dict): what the report,
`compare` and `--resume` read. The six `REQUIRED` fields say which trial it
is; a line without them (or with one of the wrong type) is not a record. Any
other field of the wrong type is dropped where it is read, with a warning
naming the field, so it shows as "-" rather than breaking a table. Fields
this version doesn't know (records of later versions) are kept as they are.

The checker below (`built`, `kept`, `problems`) knows TypedDicts, not
records: env.json is written and read through it too (run_env.py).
"""

from __future__ import annotations

import enum
import math
import types
import typing
from typing import TypedDict

from tlbench.batch_search import BatchSizeSearch


class Status(str, enum.Enum):
    """How a trial ended."""

    OK = "ok"  # every figure measured
    OOM = "oom"  # out of memory, or refused up front because it would not fit
    ERROR = "error"  # any other failure; `error` says what

    def __str__(self) -> str:
        return self.value


# An ok record is done only with these: the figures every ok trial measures
# and the report's table leads with.
ESSENTIAL_FIGURES = ("test_accuracy", "train_images_per_sec", "infer_images_per_sec", "peak_memory_bytes")


class Timing(TypedDict, total=False):
    """Timed windows of one pass (measure.Timing.summary)."""

    repeats: int  # timed windows
    timed_steps: int
    window_steps_min: int  # the fewest steps in a window: fewer than 3 (or 1 window) is a smoke figure
    timed_seconds: float
    attempts: int  # times the pass was timed: more than 1 when an attempt was unstable (stability.TIMING_ATTEMPTS)
    images_per_sec_cv: float  # sample standard deviation / mean over the windows (2 or more)
    other_cpu_share_max: float  # of the machine's CPU time other processes took, per window
    other_cpu_share_mean: float
    images_per_sec_median: float  # over the windows
    images_per_sec_q1: float
    images_per_sec_q3: float
    images_per_sec_min: float
    images_per_sec_max: float
    step_seconds_median: float
    step_seconds_q1: float
    step_seconds_q3: float
    step_seconds_min: float
    step_seconds_max: float


class CurvePoint(TypedDict, total=False):
    """Validation after one epoch of one learning rate."""

    epoch: int  # 0: the start (fine-tuning's probed head)
    train_seconds: float  # training time so far, evaluation excluded
    train_loss: float | None  # mean over the epoch, training mode; None for the start
    val_accuracy: float
    val_loss: float


class Candidate(TypedDict, total=False):
    """One learning rate of a search on validation."""

    base_learning_rate: float  # at plan.REFERENCE_BATCH_SIZE
    learning_rate: float  # as trained with
    kept_epoch: int  # lowest validation loss
    epochs_run: int
    stopped_early: bool
    val_accuracy: float  # of the kept epoch
    val_loss: float
    time_to_accuracy_seconds: float
    val_curve: list[CurvePoint]


class TrialRecord(TypedDict, total=False):
    # --- which trial (plan.TrialSpec) ---
    trial_id: str  # backbone-mode-bsN-dataset-seedS
    backbone: str
    mode: str  # registry.MODES: transfer / last_block / last_stage / finetune
    batch_size: int
    dataset: str  # "digits", tfds:NAME or an image folder
    seed: int  # head initialisation and shuffling
    split_seed: int
    train_size: int | None  # --train-size cap
    budget: str  # quick / cpu / gpu
    weights: str  # tfhub:<handle>, local:<path>, standin:random-init
    weights_note: str | None  # why a fallback source was chosen
    batch_norm: str  # the backbone's BatchNorm while it trains: frozen / train (transfer: frozen)
    # --- how it ended ---
    status: Status
    error: str | None  # "Type: message" when status is not ok
    seconds: float | None  # wall time of the trial; None when its worker died
    started_at: str  # UTC, ISO 8601
    finished_at: str
    # --- where it ran ---
    host: str
    device: str  # GPU:<name> or CPU:<model>
    process_id: int  # a fresh worker process per trial
    node_id: str  # Ray node
    worker_niceness: int  # the trial's process priority (cluster._normal_priority)
    ray_gpu_ids: list[str]
    cuda_visible_devices: str | None
    # --- the model ---
    module: str  # the folder hub.KerasLayer loaded
    module_format: str  # tf2-savedmodel / tf1-hub
    converted_from: str  # a TF1 module fine-tuned through its tf_keras conversion
    conversion_max_abs_difference: float
    image_size: int  # pixels, height = width
    feature_dim: int
    num_classes: int
    class_names: list[str]
    trainable_params: int  # the parameters that train (backbone part and head)
    total_params: int
    trained_backbone_variables: int  # backbone variables that train (transfer: 0)
    backbone_variables: int | None  # the backbone's trainable variables (transfer: None)
    trained_first_layer: str | None  # first and last layer they belong to (module's variable order)
    trained_last_layer: str | None
    xla: bool
    mixed_precision: bool  # applied (asked for and supported)
    precision_note: str | None
    # --- the data ---
    split_sizes: dict[str, int]  # images per split: train / val / test
    class_counts: dict[str, list[int]]  # per split, per class
    dataset_images: int
    skipped_files: int  # files of an image folder that are not usable images
    # --- accuracy (training.fit_and_select) ---
    learning_rate: float  # chosen, as trained with
    base_learning_rate: float
    learning_rate_rule: str
    lr_search: list[Candidate]  # the final stage's search
    probe_lr_search: list[Candidate]  # the linear probe's
    max_epochs: int
    patience: int
    kept_epoch: int  # of the chosen learning rate (modes that train the backbone: 0 = the probed start)
    batch_norm_momentum: float
    batch_norm_momentum_note: str
    train_accuracy: float  # fractions in [0, 1]
    val_accuracy: float
    val_loss: float
    test_accuracy: float
    test_loss: float
    test_passes: int  # 1: the test split was read once, after every choice
    feature_seconds: float
    time_to_accuracy_seconds: float
    phase_seconds: dict[str, float]  # wall time per phase of the trial
    # --- speed and memory (trial.timed_passes) ---
    train_images_per_sec: float  # median over the timed windows
    infer_images_per_sec: float
    train_timing: Timing
    infer_timing: Timing
    warmup_steps: int
    baseline_memory_bytes: int  # in use before the timed training steps
    peak_memory_bytes: int  # during them
    activation_memory_bytes: int  # peak - baseline: what a step adds
    infer_peak_memory_bytes: int
    infer_activation_memory_bytes: int
    memory_method: str  # tf-allocator:CPU:0 / tf-allocator:GPU:0; rss-hwm only where TensorFlow was imported first
    peak_rss_bytes: int  # the process's resident peak over the same steps
    runtime_overhead_bytes: int | None  # peak_rss_bytes - peak_memory_bytes: runtime, libraries, allocator reserve
    # --- what the graph says (costs.trial_costs) ---
    forward_flops_per_image: int
    train_flops_per_image: int
    predicted_activation_bytes_per_image: int
    predicted_activation_bytes_per_batch: int
    predicted_activation_bytes: int  # at the trial's batch size
    weight_bytes: int
    gradient_bytes: int
    optimizer_slot_bytes: int
    prediction_method: str
    # the most bytes a step holds at once over what is resident before it (graphcost's liveness simulation):
    # [per image, per batch] of each moment that is the peak at some batch size; the largest value is the peak
    predicted_train_step_peak_lines: list[list[int]]
    predicted_infer_step_peak_lines: list[list[int]]
    predicted_train_step_peak_bytes_per_image: int  # the peak moment's at the trial's batch size
    predicted_train_step_peak_bytes_per_batch: int
    predicted_infer_step_peak_bytes_per_image: int
    predicted_infer_step_peak_bytes_per_batch: int
    predicted_peak_memory_bytes: int  # weights + Adam slots + timed batches + train step peak: beside peak_memory_bytes
    predicted_infer_peak_memory_bytes: int  # the same with the inference step: beside infer_peak_memory_bytes
    device_memory_bytes: int | None  # the device's: --device-memory, the GPU's, or the CPU allocator's limit
    device_memory_emulated: bool  # --device-memory made the device that size
    max_batch_size_predicted: int | None  # the largest batch whose training step fits it, by the graph
    max_batch_size_found: int | None  # --batch-size max: the largest whose probe ran (batch_size_search)
    batch_size_search: BatchSizeSearch  # --batch-size max: the search that chose this trial's batch size
    oom_cause: str  # of an oom: "allocator" (an allocation failed) or "prediction" (refused before training)
    train_flops_per_sec: float
    infer_flops_per_sec: float
    peak_flops_per_sec: float  # the device's, from a matmul probe
    peak_flops_method: str
    peak_flops_probes: list[float]  # every probe of the peak, in order (measure.PeakFlops)
    train_mfu: float  # model FLOP utilisation, fraction
    infer_mfu: float
    # --- how far the timed figures can be trusted (stability.judge_trial) ---
    timing_quality: str  # measured / smoke (1 window, or windows of fewer than 3 steps: the quick budget)
    unstable: dict[str, str]  # figure (train_images_per_sec, infer_images_per_sec, peak_flops_per_sec) -> why


REQUIRED = ("trial_id", "backbone", "mode", "batch_size", "dataset", "status")
FIELDS: dict[str, object] = typing.get_type_hints(TrialRecord)


def make(**fields) -> TrialRecord:
    """A record from its fields, checked against the definition: an unknown
    field or a value of the wrong type is a bug, raised as TypeError here
    rather than written. NumPy scalars become Python numbers first."""
    record = built(fields, FIELDS, "record")
    if "status" in record:
        record["status"] = Status(record["status"])
    return typing.cast(TrialRecord, record)


def checked(payload) -> tuple[TrialRecord | None, list[str]]:
    """A line's JSON value as a record: (None, [why]) when it is not one; else
    (the record with every field of the wrong type dropped, [one line per
    dropped field])."""
    if not isinstance(payload, dict):
        return None, [f"is {_kind(payload)}, not a record; skipped"]
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        return None, [f"lacks {', '.join(missing)}; skipped"]
    wrong = [key for key in REQUIRED if problems(payload[key], FIELDS[key], key)]
    if wrong:
        return None, [f"has {', '.join(wrong)} of the wrong type; skipped"]
    record, dropped = kept(payload, FIELDS)
    record["status"] = Status(record["status"])
    return typing.cast(TrialRecord, record), [f"{line}; shown as -" for lines in dropped.values() for line in lines]


def finite(value) -> float | None:
    """A finite int or float (not a bool: JSON true is no number), else None;
    a record's fields may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return value if math.isfinite(value) else None
    except OverflowError:  # an int too large for a float
        return None


def ended_ok(record) -> bool:
    """A trial that ended ok (its figures may since have been dropped by `checked`)."""
    return record.get("status") == Status.OK


def has_result(record) -> bool:
    """An ok trial with its test accuracy: a result the reports sum over seeds.
    An ok record without one (another version's, a damaged one) is no result."""
    return ended_ok(record) and finite(record.get("test_accuracy")) is not None


def done(record) -> bool:
    """Whether a trial whose last record this is needs no rerun (`--resume`
    runs every trial of the grid that is not done): an ok record with each of
    its ESSENTIAL_FIGURES a finite number, or an oom one (it would run out of
    memory again). An error is not done, nor an ok record whose figures are
    missing or were dropped by `checked` as of the wrong type."""
    if record.get("status") == Status.OOM:
        return True
    return ended_ok(record) and all(finite(record.get(key)) is not None for key in ESSENTIAL_FIGURES)


# ------------------------------------------------------------ type checks
# Of any JSON object defined by TypedDicts: the record's and env.json's (run_env.py).

_DROP = object()


def built(fields: dict, kinds: dict[str, object], what: str) -> dict:
    """`fields` as the JSON values they stand for (`_plain`), checked against
    `kinds` (field -> type): an unknown field or a value of the wrong type is
    a TypeError naming them."""
    unknown = sorted(set(fields) - set(kinds))
    if unknown:
        raise TypeError(f"not {what} fields: {', '.join(unknown)}")
    plain = {key: _plain(value) for key, value in fields.items()}
    wrong = [line for key, value in plain.items() for line in problems(value, kinds[key], key)]
    if wrong:
        raise TypeError(f"{what} fields of the wrong type: " + "; ".join(wrong))
    return plain


def kept(payload: dict, kinds: dict[str, object]) -> tuple[dict, dict[str, list[str]]]:
    """`payload` with every part of the wrong type left out, and per field
    that lost a part (or went whole), one line per part naming it. Fields
    `kinds` doesn't know (a later version's) are kept as they are."""
    result, dropped = {}, {}
    for key, value in payload.items():
        kind = kinds.get(key)
        wrong = [] if kind is None else problems(value, kind, key)
        if wrong:
            dropped[key] = wrong
            value = _without_bad_parts(value, kind)
            if value is _DROP:
                continue
        result[key] = value
    return result, dropped


def problems(value, kind, path: str) -> list[str]:
    """Why `value` is not of `kind` ([] when it is): one line per bad part,
    naming the part (`train_timing.images_per_sec_median`)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        (inner,) = [a for a in args if a is not type(None)]
        return problems(value, inner, path)
    if _is_typed_dict(kind):
        if not isinstance(value, dict):
            return [f"{path} is {_kind(value)}, not an object"]
        hints = typing.get_type_hints(kind)
        return [p for key, item in value.items() if key in hints for p in problems(item, hints[key], f"{path}.{key}")]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path} is {_kind(value)}, not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path} is {_kind(value)}, not an object"]
        return [p for key, item in value.items() for p in problems(item, args[1], f"{path}.{key}")]
    if _fits(value, kind):
        return []
    return [f"{path} is {_kind(value)}, not {_NAMES.get(kind, getattr(kind, '__name__', str(kind)))}"]


def _fits(value, kind) -> bool:
    if kind is Status:
        return isinstance(value, str) and value in {s.value for s in Status}
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # JSON true is not a number
    if kind is float:
        return isinstance(value, (int, float)) and not (isinstance(value, int) and abs(value) > 2**1023)
    return isinstance(value, kind)


def _without_bad_parts(value, kind):
    """`value` with what doesn't fit `kind` taken out: bad keys of an object
    are dropped; a list or map with a bad item, or a bad scalar, goes whole."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [a for a in args if a is not type(None)]
    if _is_typed_dict(kind) and isinstance(value, dict):
        hints = typing.get_type_hints(kind)
        kept = {}
        for key, item in value.items():
            if key in hints and problems(item, hints[key], key):
                item = _without_bad_parts(item, hints[key])
                if item is _DROP:
                    continue
            kept[key] = item
        return kept
    return _DROP


def _is_typed_dict(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__total__")


_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true/false", Status: "ok, oom or error"}


def _kind(value) -> str:
    """What a JSON value is, with a short excerpt."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _plain(value):
    """NumPy scalars and arrays, and tuples, as the JSON types they stand for."""
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
