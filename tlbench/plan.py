"""What a run will do: budgets, module sources, trial specs and the grid.

Plain dataclasses, no TensorFlow: the driver builds them and Ray ships them to
the worker processes that run the trials.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tlbench.batch_search import search_key
from tlbench.linear import PROBE_PENALTIES
from tlbench.registry import DEFAULT_BACKBONES, has_mode, trains_backbone


@dataclass(frozen=True)
class Budget:
    """How much data a trial trains on and how long it is timed.

    The same budget holds for every trial of a run, so backbones are compared on
    the same images with the same number of passes.
    """

    name: str  # "quick", "cpu" or "gpu"
    max_train_images: int | None  # stratified cap per split; None = whole split
    max_eval_images: int | None  # cap for validation and for test, each
    finetune_epochs: int  # at most this many passes over the training images per fine-tuning rate
    # The linear probe's L2 penalties (linear.logistic_path, by L-BFGS on the cached features).
    probe_penalties: tuple = PROBE_PENALTIES
    # Base learning rates of fine-tuning, every mode but transfer (Adam, at
    # REFERENCE_BATCH_SIZE; scaled to the trial's batch size by
    # `scaled_learning_rate`). Fine-tuning moves pretrained weights: the
    # range reaches down to 1e-5, where a whole MobileNet improves on its probe.
    learning_rates: dict = field(default_factory=lambda: {"finetune": FINETUNE_RATES})
    # Early stopping: training at one learning rate ends after this many epochs
    # without a lower validation loss, and the weights of the lowest one are kept.
    patience: dict = field(default_factory=lambda: {"finetune": 1})
    # The timed passes (measure.TimingPlan): untimed warm-up steps first
    # (tracing, XLA compile, allocator warm-up), then `timed_repeats` windows
    # of at least `min_timed_steps` steps and `min_timed_seconds` each; the
    # record keeps the median and the spread over the windows. A pass judged
    # unstable is timed again; fewer than 2 windows or 3 steps a window make
    # smoke figures, no measurement (stability.py).
    warmup_steps: int = 2
    min_timed_steps: int = 3
    min_timed_seconds: float = 1.0
    timed_repeats: int = 3

    def epochs(self, mode: str) -> int | None:
        """Most epochs per learning rate of `mode` (None: transfer, whose probe has no epochs)."""
        return self.finetune_epochs if trains_backbone(mode) else None

    def stage_patience(self, mode: str) -> int | None:
        return self.patience["finetune"] if trains_backbone(mode) else None


FINETUNE_RATES = (1e-5, 5e-5, 3e-4)
# Each probe of the device's peak FLOP/s (worker/measure.py) runs its matmuls
# this long at least; a trial probes twice or more.
PEAK_PROBE_SECONDS = 0.5


# Learning rates are given for this batch size and scaled to a trial's by the
# square-root rule, the one suited to Adam (Hoffer et al. 2017; Malladi et al.
# 2022): the gradient noise falls with sqrt(batch), so the step may grow by as
# much. (The linear rule of Goyal et al. 2017 is for SGD.)
REFERENCE_BATCH_SIZE = 32
LEARNING_RATE_RULE = f"base x sqrt(batch_size / {REFERENCE_BATCH_SIZE})"


def scaled_learning_rate(base: float, batch_size: int) -> float:
    return base * math.sqrt(batch_size / REFERENCE_BATCH_SIZE)


# The backbone's BatchNorm while backbone variables train. "frozen":
# inference mode, the moving statistics used and unchanged (Keras'
# transfer-learning guide); "train": batch statistics, moving averages
# updated (the TF1 tutorial's way). Measured on the bundled digits with
# Google's MobileNet V2 0.35/128, training mode takes a first fine-tuning
# epoch to a training loss of 9-11 (frozen: 0.01) and no run kept it; frozen
# is the default (README, "Fine-tuning on the CPU budget").
BATCH_NORM_POLICIES = ("frozen", "train")
DEFAULT_BATCH_NORM = "frozen"

# BatchNorm's moving-average momentum when the backbone trains: TF Hub's model
# pages suggest 0.997 for fine-tuning (Keras' default is 0.99).
DEFAULT_BATCH_NORM_MOMENTUM = 0.997


@dataclass(frozen=True)
class Protocol:
    """How accuracy is measured, the same for every trial of a run."""

    split_seed: int = 0  # the stratified train/validation/test split (and any subset) uses this seed
    train_size: int | None = None  # --train-size: at most this many training images (stratified)
    batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM  # with batch_norm="train"
    batch_norm: str = DEFAULT_BATCH_NORM  # BATCH_NORM_POLICIES, when backbone variables train

    def max_train_images(self, budget: Budget) -> int | None:
        caps = [cap for cap in (budget.max_train_images, self.train_size) if cap is not None]
        return min(caps) if caps else None


BUDGETS = {
    # Smoke test and CI: the same grid and code path, a few steps each.
    "quick": Budget(
        name="quick",
        max_train_images=16,
        max_eval_images=10,
        finetune_epochs=1,
        warmup_steps=1,
        min_timed_steps=1,
        min_timed_seconds=0.0,
        timed_repeats=1,
    ),
    # CPU-only machines: sized so the default grid (ResNet V2 50 fine-tuning
    # and its last block included) stays practical on 2 cores (README). Two
    # epochs per fine-tuning rate: the real MobileNet module's fine-tuning
    # kept epoch 1 or 2 or the probe's start, never a later one.
    "cpu": Budget(
        name="cpu",
        max_train_images=256,
        max_eval_images=128,
        finetune_epochs=2,
    ),
    # GPUs: the whole dataset, several fine-tuning epochs, larger batches.
    "gpu": Budget(
        name="gpu",
        max_train_images=None,
        max_eval_images=None,
        finetune_epochs=10,
        patience={"finetune": 2},
        min_timed_steps=20,
        min_timed_seconds=2.0,
        timed_repeats=5,
    ),
}


# The grid of `run --all`, by the devices of the cluster (not by the budget:
# `--quick` runs the same grid).
DEFAULT_BATCH_SIZES = {"cpu": (8, 16), "gpu": (32, 64, 128)}
# The ladder's rungs in the default grid: on GPUs all of them; on CPUs the
# probe, the last block and the whole backbone (the last stage would add about
# a fifth to a run that already takes a quarter of an hour; --mode last_stage
# runs it).
DEFAULT_MODES = {
    "cpu": ("transfer", "last_block", "finetune"),
    "gpu": ("transfer", "last_block", "last_stage", "finetune"),
}


def choose_budget(quick: bool, cluster_gpus: int) -> Budget:
    if quick:
        return BUDGETS["quick"]
    return BUDGETS["gpu"] if cluster_gpus > 0 else BUDGETS["cpu"]


@dataclass(frozen=True)
class ModuleSource:
    """Where one backbone's weights come from, decided once per run."""

    kind: str  # "local", "tfhub" or "standin"
    location: str  # directory, TF Hub handle/URL, or stand-in cache directory
    note: str | None = None  # why this source was chosen when it is a fallback

    @property
    def weights(self) -> str:
        """The record's `weights` field, e.g. `tfhub:<handle>`."""
        if self.kind == "standin":
            return "standin:random-init"
        return f"{self.kind}:{self.location}"


@dataclass(frozen=True)
class CarriedRate:
    """Fine-tuning's base learning rate chosen by a trial of a smaller batch size (driver/carry.py)."""

    trial_id: str  # the trial that searched it
    base_learning_rate: float


@dataclass(frozen=True)
class TrialSpec:
    backbone: str
    mode: str
    batch_size: int
    dataset: str  # "digits" or an image folder
    seed: int  # this repetition's seed: the order of fine-tuning's batches (the probe is a convex fit: no seed)
    budget: Budget
    module: ModuleSource
    protocol: Protocol = Protocol()
    xla: bool = False  # every step compiled with XLA (jit_compile)
    mixed_precision: bool = False  # asked for; applied on GPUs that run float16 fast
    device_memory: int | None = None  # --device-memory: bytes of the device emulated; None: the device's own
    batch_size_search: dict | None = None  # --batch-size max: the search that chose batch_size (batch_search.py)
    carried_rate: CarriedRate | None = None  # fine-tuning trains this rate alone instead of searching (carry.py)

    @property
    def trial_id(self) -> str:
        return trial_id(self.backbone, self.mode, self.batch_size, self.dataset, self.seed)

    def frozen_key(self) -> tuple:
        """What the frozen part of the trial's work depends on (worker/frozen.py):
        trials with the same key can share it, whatever their mode, batch and seed."""
        protocol = self.protocol
        caps = (protocol.max_train_images(self.budget), self.budget.max_eval_images)
        return (
            self.backbone,
            self.module,
            self.dataset,
            protocol.split_seed,
            caps,
            protocol.batch_norm_momentum,
            protocol.batch_norm,
            self.xla,
            self.mixed_precision,
            self.device_memory,
        )

    def record_fields(self) -> dict:
        """The record fields that say what was run."""
        return {
            "trial_id": self.trial_id,
            "backbone": self.backbone,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "dataset": self.dataset,
            "seed": self.seed,
            "split_seed": self.protocol.split_seed,
            "train_size": self.protocol.train_size,
            "batch_norm": self.protocol.batch_norm if trains_backbone(self.mode) else "frozen",
            "budget": self.budget.name,
            "weights": self.module.weights,
            "weights_note": self.module.note,
            "learning_rate_carried_from": self.carried_rate.trial_id if self.carried_rate else None,
            **(
                {"batch_size_search": self.batch_size_search, "max_batch_size_found": self.batch_size_search["found"]}
                if self.batch_size_search is not None
                else {}
            ),
        }


def dataset_tag(dataset: str) -> str:
    """A short, path-safe name for a dataset (a folder's last component)."""
    last = dataset.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", last).strip(".") or "dataset"  # never "." or ".."


def trial_id(backbone: str, mode: str, batch_size: int, dataset: str, seed: int) -> str:
    return f"{backbone}-{mode}-bs{batch_size}-{dataset_tag(dataset)}-seed{seed}"


def build_grid(
    backbones,
    modes,
    batch_sizes,
    dataset: str,
    seeds,
    budget: Budget,
    sources: dict,
    *,
    protocol: Protocol = Protocol(),
    xla: bool = False,
    mixed_precision: bool = False,
    device_memory: int | None = None,
    batch_size_searches: dict | None = None,
) -> list[TrialSpec]:
    """Every backbone x mode x batch size x seed, in that order; a partial
    mode only for backbones whose blocks the registry knows. With
    `batch_size_searches` ({"backbone/mode": BatchSizeSearch}, --batch-size
    max) a pair's one batch size is its search's, batch 1 when nothing fit
    (that trial ends oom, with its search), and a pair not searched yet has
    no trials."""

    def sizes(b, m):
        if batch_size_searches is None:
            return [(n, None) for n in batch_sizes]
        search = batch_size_searches.get(search_key(b, m))
        return [] if search is None else [(search["found"] or 1, search)]

    return [
        TrialSpec(b, m, n, dataset, s, budget, sources[b], protocol, xla, mixed_precision, device_memory, search)
        for b in backbones
        for m in modes
        if has_mode(b, m)
        for n, search in sizes(b, m)
        for s in seeds
    ]


def default_selection(cluster_gpus: int) -> dict:
    return {
        "backbones": DEFAULT_BACKBONES,
        "modes": DEFAULT_MODES["gpu" if cluster_gpus else "cpu"],
        "batch_sizes": DEFAULT_BATCH_SIZES["gpu" if cluster_gpus else "cpu"],
    }


def longest_first(specs, cost: Callable[[TrialSpec], float]) -> list[TrialSpec]:
    """The specs in submission order: the most costly first, so that on
    several GPUs the longest trials never start last and stretch the run
    (longest processing time first, LPT). Equal costs keep their order."""
    return sorted(specs, key=cost, reverse=True)  # sorted is stable, reversed too


# A training step in forward passes: the forward, plus the backward of the part that trains.
STEP_FORWARDS = {"transfer": 1, "last_block": 1.2, "last_stage": 1.6, "finetune": 3}


def search_epochs(budget: Budget, rates: int | None = None) -> int:
    """Epochs a fine-tuning search trains at most: successive halving, every
    rate's first epoch, then the best half's (rounded down, at least one)
    others. `rates`: the rates it trains (default: the budget's)."""
    rates = len(budget.learning_rates["finetune"]) if rates is None else rates
    return rates + max(1, rates // 2) * (budget.finetune_epochs - 1)


def predicted_flops(
    spec: TrialSpec, forward_flops_per_image: float, split_sizes: dict, rates: int | None = None
) -> float:
    """A trial's compute by its plan, in FLOPs, to order a grid: the feature
    pass, every fine-tuning epoch it may run (a training step costs about
    three forward passes when the whole backbone trains, less the shallower
    it trains), the evaluations and the timed steps. An upper bound where
    early stopping may cut epochs; the timed passes' minimum seconds are
    left out. `rates`: fine-tuning learning rates it will train (default:
    the budget's; one where a smaller batch's rate is carried, carry.py)."""
    train, val, test = (split_sizes[name] for name in ("train", "val", "test"))
    budget = spec.budget
    step = STEP_FORWARDS[spec.mode]
    images = train + val + test  # features for the probe; the one test pass
    if trains_backbone(spec.mode):
        images += search_epochs(budget, rates) * (step * train + val) + train
    timed_steps = budget.warmup_steps + budget.timed_repeats * budget.min_timed_steps
    images += timed_steps * spec.batch_size * (step + 1)  # training, then inference
    return forward_flops_per_image * images
