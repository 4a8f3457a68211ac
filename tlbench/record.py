"""The trial record: one definition of what a line of trials.jsonl holds,
one constructor the trial workers and the driver build records with, and one
checker the reader passes every line through.

A record is a plain JSON object (a `TrialRecord` dict): what the report,
`compare` and `--resume` read. The six `REQUIRED` fields say which trial it
is; a line without them (or with one of the wrong type) is not a record. Any
other field of the wrong type is dropped where it is read, with a warning
naming the field, so it shows as "-" rather than breaking a table. Fields
this version doesn't know (records of later versions) are kept as they are.

Numbers carry their ranges (schema.py): accuracies are fractions in [0, 1],
images/s and FLOP/s finite and > 0, bytes, seconds and counts finite and
>= 0. A value out of range is left out where it is read as a mistyped one
is, and the record keeps the names of the figures it lost (`lost_figures`):
such a trial is not finished (`done`), so report, compare and `--resume`
agree that it ran without its figures, and `--resume` runs it again.
"""

from __future__ import annotations

import enum
import typing
from datetime import datetime, timezone
from typing import TypedDict

from tlbench.batch_search import BatchSizeSearch
from tlbench.schema import (
    Bytes,
    Count,
    Fraction,
    NonNegative,
    Rate,
    Seconds,
    built,
    finite,
    hints,
    kept,
    kind_of,
    problems,
)


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

    repeats: Count  # timed windows
    timed_steps: Count
    window_steps_min: Count  # the fewest steps in a window: fewer than 3 (or 1 window) is a smoke figure
    timed_seconds: Seconds
    attempts: Count  # times the pass was timed: more than 1 when an attempt was unstable (stability.TIMING_ATTEMPTS)
    images_per_sec_cv: NonNegative  # sample standard deviation / mean over the windows (2 or more)
    other_cpu_share_max: Fraction  # of the machine's CPU time other processes took, per window
    other_cpu_share_mean: Fraction
    images_per_sec_median: Rate  # over the windows
    images_per_sec_q1: Rate
    images_per_sec_q3: Rate
    images_per_sec_min: Rate
    images_per_sec_max: Rate
    step_seconds_median: Seconds
    step_seconds_q1: Seconds
    step_seconds_q3: Seconds
    step_seconds_min: Seconds
    step_seconds_max: Seconds


class CurvePoint(TypedDict, total=False):
    """Validation after one epoch of one learning rate."""

    epoch: Count  # 0: the start (fine-tuning's probed head)
    train_seconds: Seconds  # training time so far, evaluation excluded
    train_loss: float | None  # mean over the epoch, training mode; None for the start
    val_accuracy: Fraction
    val_loss: float  # a diverged learning rate's may be NaN: measured, not out of range


class ProbeCandidate(TypedDict, total=False):
    """The linear probe fitted at one L2 penalty (training._probe)."""

    penalty: float  # linear.logistic_path's, on the standardised features
    val_accuracy: Fraction
    val_loss: float
    train_loss: float  # mean cross-entropy on the training features, without the penalty
    iterations: Count  # L-BFGS's
    converged: bool
    fit_seconds: Seconds
    train_seconds: Seconds  # the features and the path's fits up to this one
    time_to_accuracy_seconds: Seconds


class Candidate(TypedDict, total=False):
    """One learning rate of a search on validation."""

    base_learning_rate: Rate  # at plan.REFERENCE_BATCH_SIZE
    learning_rate: Rate  # as trained with
    kept_epoch: Count  # lowest validation loss
    epochs_run: Count
    stopped_early: bool
    stopped_at_rung: bool  # fine-tuning's successive halving stopped it after epoch 1 (fine-tuning stage only)
    val_accuracy: Fraction  # of the kept epoch
    val_loss: float
    time_to_accuracy_seconds: Seconds
    val_curve: list[CurvePoint]


class FrozenInputs(TypedDict, total=False):
    """The backbone's frozen inputs (worker/frozen.py), computed once for the run's trials."""

    shared: bool  # the trial used the shared features
    activations_shared: bool  # and the shared boundary activations (accuracy_path boundary)
    probe_shared: bool  # and the linear probe's path fitted on the shared features (the trial chose on it)
    # how the shared features were computed: "module" (its own pass), or "boundary:LAYER" (a partial mode's
    # cached activations at LAYER through the part above it, checked against the module's)
    features_via: str | None
    computation: str | None  # the id of the computation the trial got, one per backbone in a run
    node_id: str | None  # the Ray node it ran on
    seconds: Seconds | None  # how long it took
    note: str | None  # why the trial computed its own
    # when it ended (UTC, ISO 8601) and what it told then, the backbone's early answer (None when it failed)
    finished_at: str | None
    logme: float | None
    ridge_val_accuracy: Fraction | None
    feature_images_per_sec: Rate | None
    # what the early answer's time of the trials was predicted from (driver/estimate.py): the task's start-up
    # and load, and {partial mode: the share of a forward pass above its boundary} where it was cut
    setup_seconds: Seconds | None
    top_share: dict[str, Fraction] | None


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
    seconds: Seconds | None  # wall time of the trial; None when its worker died
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
    conversion_max_abs_difference: NonNegative
    image_size: Count  # pixels, height = width
    feature_dim: Count
    num_classes: Count
    class_names: list[str]
    trainable_params: Count  # the parameters that train (backbone part and head)
    total_params: Count
    trained_backbone_variables: Count  # backbone variables that train (transfer: 0)
    backbone_variables: Count | None  # the backbone's trainable variables (transfer: None)
    trained_first_layer: str | None  # first and last layer they belong to (module's variable order)
    trained_last_layer: str | None
    xla: bool
    mixed_precision: bool  # applied (asked for and supported)
    precision_note: str | None
    # --- the data ---
    split_sizes: dict[str, Count]  # images per split: train / val / test
    class_counts: dict[str, list[Count]]  # per split, per class
    dataset_images: Count
    skipped_files: Count  # files of an image folder that are not usable images
    # --- accuracy (training.fit_and_select) ---
    accuracy_path: str  # what the search trained on: features (transfer), boundary (activations), images
    accuracy_path_note: str | None  # a partial mode on images: why not on boundary activations
    boundary_layer: str | None  # accuracy_path boundary: the first trained layer, whose input was cached
    frozen_inputs: FrozenInputs
    probe_penalty: float  # the linear probe's chosen L2 penalty
    probe_search: list[ProbeCandidate]  # the probe at each penalty
    learning_rate: Rate | None  # fine-tuning's chosen one, as trained with; transfer: None
    base_learning_rate: Rate | None
    learning_rate_rule: str
    lr_search: list[Candidate]  # fine-tuning's learning rates; transfer: none
    learning_rate_carried_from: str | None  # the trial whose chosen rate this one trained alone (driver/carry.py)
    probe_lr_search: list[Candidate]  # earlier versions' probe: Adam at each learning rate
    max_epochs: Count | None  # per fine-tuning learning rate; transfer: None
    patience: Count | None
    kept_epoch: Count | None  # of the chosen learning rate (0 = the probed start); transfer: None
    batch_norm_momentum: Fraction
    batch_norm_momentum_note: str
    train_accuracy: Fraction  # fractions in [0, 1]
    val_accuracy: Fraction
    val_loss: float
    test_accuracy: Fraction
    test_loss: float
    test_passes: Count  # 1: the test split was read once, after every choice
    test_inputs: str  # what that read: the shared "features" (the chosen weights were the probe's) or the "images"
    feature_seconds: Seconds
    time_to_accuracy_seconds: Seconds
    phase_seconds: dict[str, Seconds]  # wall time per phase of the trial
    # --- speed and memory (trial.timed_passes) ---
    train_images_per_sec: Rate  # median over the timed windows
    infer_images_per_sec: Rate
    train_timing: Timing
    infer_timing: Timing
    warmup_steps: Count
    baseline_memory_bytes: Bytes  # in use before the timed training steps
    peak_memory_bytes: Bytes  # during them
    activation_memory_bytes: Bytes  # peak - baseline: what a step adds
    infer_peak_memory_bytes: Bytes
    infer_activation_memory_bytes: Bytes
    memory_method: str  # tf-allocator:CPU:0 / tf-allocator:GPU:0; rss-hwm only where TensorFlow was imported first
    onednn: bool  # TensorFlow's oneDNN CPU kernels on (TF_ENABLE_ONEDNN_OPTS, else its default for the CPU)
    peak_rss_bytes: Bytes  # the process's resident peak over the same steps
    runtime_overhead_bytes: Bytes | None  # peak_rss_bytes - peak_memory_bytes: runtime, libraries, allocator reserve
    # --- what the graph says (costs.trial_costs) ---
    forward_flops_per_image: Count
    train_flops_per_image: Count
    predicted_activation_bytes_per_image: Bytes
    predicted_activation_bytes_per_batch: int  # a line's intercept (through batches 1 and 2): not ranged
    predicted_activation_bytes: Bytes  # at the trial's batch size
    weight_bytes: Bytes
    gradient_bytes: Bytes
    optimizer_slot_bytes: Bytes
    prediction_method: str
    # the most bytes a step holds at once over what is resident before it (graphcost's liveness simulation):
    # [per image, per batch] of each moment that is the peak at some batch size; the largest value is the peak
    predicted_train_step_peak_lines: list[list[int]]
    predicted_infer_step_peak_lines: list[list[int]]
    predicted_train_step_peak_bytes_per_image: Bytes  # the peak moment's at the trial's batch size
    predicted_train_step_peak_bytes_per_batch: int
    predicted_infer_step_peak_bytes_per_image: Bytes
    predicted_infer_step_peak_bytes_per_batch: int
    # the largest working buffer a kernel of the training step takes beside the graph's tensors (kernel_scratch.py:
    # Eigen's CPU convolution gradients; 0 with oneDNN's kernels or on a GPU): counted in the step's peak
    predicted_kernel_scratch_bytes: Bytes
    predicted_peak_memory_bytes: (
        Bytes  # weights + Adam slots + timed batches + train step peak: beside peak_memory_bytes
    )
    predicted_infer_peak_memory_bytes: Bytes  # the same with the inference step: beside infer_peak_memory_bytes
    device_memory_bytes: Bytes | None  # the device's: --device-memory, the GPU's, or the CPU allocator's limit
    device_memory_emulated: bool  # --device-memory made the device that size
    max_batch_size_predicted: Count | None  # the largest batch whose training step fits it, by the graph
    max_batch_size_found: Count | None  # --batch-size max: the largest whose probe ran (batch_size_search)
    batch_size_search: BatchSizeSearch  # --batch-size max: the search that chose this trial's batch size
    oom_cause: str  # of an oom: "allocator" (an allocation failed) or "prediction" (refused before training)
    train_flops_per_sec: Rate
    infer_flops_per_sec: Rate
    peak_flops_per_sec: Rate  # the device's, from a matmul probe
    peak_flops_method: str
    peak_flops_probes: list[Rate]  # every probe of the peak, in order (measure.PeakFlops)
    train_mfu: NonNegative  # model FLOP utilisation, fraction
    infer_mfu: NonNegative
    # --- how far the timed figures can be trusted (stability.judge_trial) ---
    timing_quality: str  # measured / smoke (1 window, or windows of fewer than 3 steps: the quick budget)
    unstable: dict[str, str]  # figure (train_images_per_sec, infer_images_per_sec, peak_flops_per_sec) -> why
    # --- set where it is read, never written ---
    lost_figures: list[str]  # fields left out by `checked`: of the wrong type or out of range


REQUIRED = ("trial_id", "backbone", "mode", "batch_size", "dataset", "status")
FIELDS: dict[str, object] = typing.get_type_hints(TrialRecord)  # plain types: what figures.py reads
KINDS: dict[str, object] = hints(TrialRecord)  # with ranges: what the checker reads


def make(**fields) -> TrialRecord:
    """A record from its fields, checked against the definition: an unknown
    field or a value of the wrong type is a bug, raised as TypeError here
    rather than written. NumPy scalars become Python numbers first. Ranges
    are the reader's (a trial writes what it measured)."""
    record = built(fields, KINDS, "record")
    if "status" in record:
        record["status"] = Status(record["status"])
    return typing.cast(TrialRecord, record)


def checked(payload) -> tuple[TrialRecord | None, list[str]]:
    """A line's JSON value as a record: (None, [why]) when it is not one; else
    (the record with every part of the wrong type or out of range left out
    and `lost_figures` naming the fields that lost one, [one line per part])."""
    if not isinstance(payload, dict):
        return None, [f"is {kind_of(payload)}, not a record; skipped"]
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        return None, [f"lacks {', '.join(missing)}; skipped"]
    wrong = [key for key in REQUIRED if problems(payload[key], KINDS[key], key)]
    if wrong:
        return None, [f"has {', '.join(wrong)} of the wrong type; skipped"]
    record, dropped = kept({key: value for key, value in payload.items() if key != "lost_figures"}, KINDS)
    record["status"] = Status(record["status"])
    if dropped:
        record["lost_figures"] = sorted(dropped)
    return typing.cast(TrialRecord, record), [f"{line}; shown as -" for lines in dropped.values() for line in lines]


def utc_now() -> str:
    """Now, as records and env.json write a moment: UTC, ISO 8601, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def timestamp(moment) -> float | None:
    """Seconds since the epoch of a moment as written (ISO 8601); None for anything else."""
    try:
        return datetime.fromisoformat(moment).timestamp()
    except (TypeError, ValueError):
        return None


def ended_ok(record) -> bool:
    """A trial that ended ok (its figures may since have been left out by `checked`)."""
    return record.get("status") == Status.OK


def done(record) -> bool:
    """Whether a trial whose last record this is needs no rerun (`--resume`
    runs every trial of the grid that is not done): an oom record (it would
    run out of memory again), or an ok one that has each of its
    ESSENTIAL_FIGURES a finite number and lost no figure where it was read
    (`checked`: of the wrong type or out of range). An error is not done."""
    if record.get("status") == Status.OOM:
        return True
    complete = all(finite(record.get(key)) is not None for key in ESSENTIAL_FIGURES)
    return ended_ok(record) and complete and not record.get("lost_figures")


def has_result(record) -> bool:
    """An ok trial with its test accuracy that lost no figure where it was
    read: a result the reports sum over seeds. An ok record that is not
    (another version's without its accuracy, a damaged one) is shown as
    "incomplete", as `compare` calls it; `--resume` runs it again (`done`)."""
    return ended_ok(record) and finite(record.get("test_accuracy")) is not None and not record.get("lost_figures")
