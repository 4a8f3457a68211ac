"""Does fine-tuning pay? Each backbone's rungs of the ladder of trainable depth
(registry.MODES, shallowest first: transfer, last_block, last_stage,
finetune) side by side: what training deeper buys in validation accuracy and
what it costs in step memory per image and in training speed, and which rung
to take. Records only, no TensorFlow.

One ladder per backbone (and per weights source and device, which are never
mixed in one ladder), shown at ONE batch size: the batch size with the most
rungs measured, the largest of those on a tie. Comparing rungs at a single
batch size keeps the comparison about depth alone: every rung saw the same
batches with the same learning-rate scaling, and throughput and per-image
memory depend on the batch size too. "Most rungs" first, so that a deep rung
out of memory at the largest batch size does not hide the ladder a smaller
batch size completes; "largest" next, as the more efficient batch size a
practitioner would run at. The other batch sizes stay in the trials table.

The rung to take is chosen on validation accuracy, not test: the rung is a
choice like the learning rate, and the test split is read once, after every
choice. Accuracy of stand-in weights (random initialisation) says nothing
about fine-tuning pretrained weights: for them only the costs are compared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tlbench.registry import MODES
from tlbench.reports.analysis import Configuration, _number, _whole, configurations
from tlbench.reports.columns import TRAIN, Column, _fraction

# The tolerance when judging the rungs' validation accuracy (LADDER_NOISE_RULE).
NOISE_POINTS = 0.005

LADDER_NOISE_RULE = (
    "a rung is within noise of the most accurate when its mean validation accuracy is below the best mean by "
    "no more than 0.5 points or either rung's standard deviation over seeds, whichever is larger"
)


def mode_order(mode: str) -> tuple:
    """A sort key: the ladder's modes shallowest first, then any other."""
    return (MODES.index(mode) if mode in MODES else len(MODES), mode)


@dataclass(frozen=True)
class Rung:
    """One mode of one ladder, over its seeds."""

    mode: str
    config: Configuration  # accuracy (mean ± std over seeds), speed: analysis.configurations' figures
    seeds: int  # trials of this rung, whatever their status
    failed: dict  # status -> trials that ended so (oom, error, incomplete)
    trained_variables: int | None  # backbone variables that train
    backbone_variables: int | None  # the backbone's trainable variables (of the whole ladder)
    first_layer: str | None  # the first layer that trains
    step_bytes_per_image: float | None  # measured: what a training step adds, per image (largest over seeds)
    predicted_bytes_per_image: float | None  # the graph's prediction of the same
    kept_probe: int  # seeds whose fine-tuning kept the probe's start (kept_epoch 0)
    kept_known: int  # seeds that recorded kept_epoch

    @property
    def measured(self) -> bool:
        return self.config.status == "ok"

    @property
    def val_mean(self) -> float | None:
        return self.config.val_mean

    @property
    def val_std(self) -> float | None:
        return self.config.val_std

    @property
    def images_per_sec(self) -> float | None:
        return self.config.train_images_per_sec

    @property
    def mostly_kept_probe(self) -> bool:
        return self.mode != "transfer" and self.kept_known > 0 and 2 * self.kept_probe > self.kept_known


@dataclass(frozen=True)
class Ladder:
    backbone: str
    label: str  # the backbone, with its weights or device where the run has several
    weights: str
    device: str
    batch_size: int
    other_batch_sizes: tuple[int, ...]
    rungs: tuple[Rung, ...]  # in MODES order

    @property
    def standin(self) -> bool:
        return self.weights.startswith("standin")

    @property
    def measured(self) -> list[Rung]:
        return [r for r in self.rungs if r.measured]

    @property
    def comparable(self) -> bool:
        """Two or more rungs with results: something to compare."""
        return len(self.measured) >= 2

    @property
    def plottable(self) -> bool:
        """Two or more rungs with a figure the ladder plot draws."""

        def drawn(rung: Rung) -> bool:
            figures = [rung.step_bytes_per_image, rung.predicted_bytes_per_image, rung.images_per_sec]
            return (not self.standin and rung.val_mean is not None) or any(f is not None and f > 0 for f in figures)

        return sum(drawn(r) for r in self.measured) >= 2

    def rows(self) -> list[dict]:
        return [_row(self, rung) for rung in self.rungs]


def ladders(records) -> list[Ladder]:
    """Every backbone's ladder in the run (sorted by backbone), each at the
    batch size with the most rungs measured; none for a backbone with no
    result in any mode of the ladder."""
    groups: dict[tuple, dict[int, dict[str, list[dict]]]] = {}
    for record in records:
        mode, batch = record.get("mode"), _whole(record.get("batch_size"))
        if mode not in MODES or batch <= 0:
            continue
        key = (str(record.get("backbone")), str(record.get("weights")), str(record.get("device")))
        groups.setdefault(key, {}).setdefault(batch, {}).setdefault(mode, []).append(record)
    backbones = Counter(backbone for backbone, _, _ in groups)
    devices = {device for _, _, device in groups}
    found = []
    for (backbone, weights, device), by_batch in sorted(groups.items()):
        rungs_by_batch = {batch: _rungs(by_mode) for batch, by_mode in by_batch.items()}
        batch = max(rungs_by_batch, key=lambda b: (sum(r.measured for r in rungs_by_batch[b]), b))
        rungs = rungs_by_batch[batch]
        if not any(r.measured for r in rungs):
            continue
        label = backbone
        if backbones[backbone] > 1:
            label += f" ({weights.split(':', 1)[0]}" + (f", {device})" if len(devices) > 1 else ")")
        elif len(devices) > 1:
            label += f" ({device})"
        others = tuple(sorted(b for b in rungs_by_batch if b != batch))
        found.append(Ladder(backbone, label, weights, device, batch, others, tuple(rungs)))
    return found


def _rungs(by_mode: dict[str, list[dict]]) -> list[Rung]:
    total = _most_common(
        r.get("backbone_variables") for group in by_mode.values() for r in group if r.get("mode") != "transfer"
    )
    return [_rung(mode, by_mode[mode], total) for mode in MODES if mode in by_mode]


def _rung(mode: str, group: list[dict], backbone_variables: int | None) -> Rung:
    (config,) = configurations(group)  # one backbone, weights, device, batch size and mode: one configuration
    # analysis' "ok": an ok trial with its test accuracy.
    ok = [r for r in group if r.get("status") == "ok" and _number(r.get("test_accuracy"))]
    failed = Counter("incomplete" if r.get("status") == "ok" else str(r.get("status")) for r in group if r not in ok)
    batch = _whole(group[0].get("batch_size"))

    def per_image(field: str) -> float | None:
        values = [float(r[field]) for r in ok if _number(r.get(field))]
        return max(values) / batch if values else None

    predicted = per_image("predicted_activation_bytes")
    if predicted is None:
        field = "predicted_activation_bytes_per_image"  # records that lack the batch's figure
        values = [float(r[field]) for r in ok if _number(r.get(field))]
        predicted = max(values) if values else None
    trained = 0 if mode == "transfer" else _most_common(r.get("trained_backbone_variables") for r in group)
    first = None if mode == "transfer" else _most_common(r.get("trained_first_layer") for r in group)
    kept = [r.get("kept_epoch") for r in ok if isinstance(r.get("kept_epoch"), int)] if mode != "transfer" else []
    return Rung(
        mode=mode,
        config=config,
        seeds=len(group),
        failed=dict(failed),
        trained_variables=trained,
        backbone_variables=backbone_variables,
        first_layer=first if isinstance(first, str) else None,
        step_bytes_per_image=per_image("activation_memory_bytes"),
        predicted_bytes_per_image=predicted,
        kept_probe=sum(1 for epoch in kept if epoch == 0),
        kept_known=len(kept),
    )


def _most_common(values):
    """The most frequent int (or str) among `values`, None when there is none."""
    counted = Counter(v for v in values if isinstance(v, (int, str)) and not isinstance(v, bool))
    return counted.most_common(1)[0][0] if counted else None


# ------------------------------------------------------------ the table


def _mib(value) -> str:
    """Bytes as MiB, with the digits that tell small from large apart."""
    mib = value / 2**20
    size = abs(mib)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 3
    return f"{mib:,.{digits}f}"


def _row(ladder: Ladder, rung: Rung) -> dict:
    return {
        "backbone": ladder.label,
        "batch_size": ladder.batch_size,
        "mode": rung.mode,
        "status": rung.config.status,
        "variables": rung.trained_variables,
        "backbone_variables": rung.backbone_variables,
        "first_layer": rung.first_layer,
        "seeds": rung.seeds,
        "failed": rung.failed,
        "val": None if ladder.standin else (rung.config.val_mean, rung.config.val_std),
        "test": None if ladder.standin else (rung.config.test_mean, rung.config.test_std),
        "standin": ladder.standin,
        "step_per_image": rung.step_bytes_per_image,
        "predicted_per_image": rung.predicted_bytes_per_image,
        "train_images_per_sec": rung.images_per_sec,
        "unstable": rung.config.unstable,
        "timing_quality": rung.config.timing_quality,
        "kept": (rung.kept_probe, rung.kept_known) if rung.mode != "transfer" and rung.kept_known else None,
    }


def _variables(row: dict) -> str | None:
    trained, total = row["variables"], row["backbone_variables"]
    if trained is None:
        return None
    return f"{trained:,}" if total is None else f"{trained:,} of {total:,}"


def _seeds(row: dict) -> str:
    if not row["failed"]:
        return str(row["seeds"])
    ok = row["seeds"] - sum(row["failed"].values())
    how = ", ".join(f"{n} {status}" for status, n in sorted(row["failed"].items()))
    return f"{ok} of {row['seeds']} ok ({how})"


def _accuracy(key: str):
    def cell(row: dict) -> str | None:
        if row["standin"]:
            return "stand-in"
        mean, std = row[key]
        if mean is None:
            return None
        return _fraction(mean) if std is None else f"{_fraction(mean)} ± {_fraction(std)}"

    return cell


def _kept(row: dict) -> str | None:
    if row["kept"] is None:
        return None
    kept, known = row["kept"]
    return f"{kept}/{known} seeds"


LADDER_COLUMNS = (
    Column("backbone", "backbone", numeric=False),
    Column("batch", "batch_size"),
    Column("mode", "mode", numeric=False),
    Column("backbone vars trained", _variables),
    Column("trains from layer", "first_layer", numeric=False),
    Column("seeds", _seeds),
    Column("val acc mean ± std", _accuracy("val")),
    Column("test acc mean ± std", _accuracy("test")),
    # MiB per image: what a training step adds to the memory in use, measured and predicted by the graph.
    Column("step mem/img MiB", "step_per_image", _mib),
    Column("pred/img MiB", "predicted_per_image", _mib),
    Column("train img/s", "train_images_per_sec", lambda v: f"{v:,.1f}", figures=TRAIN),
    # Seeds whose fine-tuning kept the linear probe's start (kept_epoch 0): their accuracy is the probe's.
    Column("kept probe", _kept),
)


def table_rows(found: list[Ladder]) -> list[dict]:
    return [row for ladder in found if ladder.comparable for row in ladder.rows()]
