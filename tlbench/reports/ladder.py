"""Does fine-tuning pay? Each backbone's rungs of the ladder of trainable
depth (registry.MODES, shallowest first) side by side: what training deeper
buys in validation accuracy and costs in step memory per image and training
speed, and which rung to take (`verdict`). Records only, no TensorFlow.

One ladder per backbone (and weights source and device, never mixed), at ONE
batch size, so that the comparison is about depth alone (the same batches and
learning-rate scaling; speed and per-image memory depend on the batch too):
the batch size with the most rungs measured, so that a deep rung out of
memory at the largest does not hide the ladder a smaller one completes; of
those the largest, as a practitioner would run. The rung is chosen on
validation accuracy: it is a choice like the learning rate, and the test
split is read once. Stand-in weights compare costs only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from tlbench import formats
from tlbench.formats import points, times
from tlbench.registry import MODES
from tlbench.reports.columns import TRAIN, Column
from tlbench.reports.configs import Configuration, config_key
from tlbench.reports.rules import ONE_SEED_RUNGS, finite, has_result, no_result_status, rungs_within_noise, whole


def mode_order(mode: str) -> tuple:
    """A sort key: the ladder's modes shallowest first, then any other."""
    return (MODES.index(mode) if mode in MODES else len(MODES), mode)


@dataclass(frozen=True)
class Rung:
    """One mode of one ladder, over its seeds."""

    mode: str
    config: Configuration  # accuracy (mean ± std over seeds), speed: configs.configurations' figures
    seeds: int  # trials of this rung, whatever their status
    failed: dict  # status -> trials that ended so (oom, error, incomplete)
    trained_variables: int | None  # backbone variables that train
    backbone_variables: int | None  # the backbone's trainable variables (of the whole ladder)
    first_layer: str | None  # the first layer that trains
    step_bytes_per_image: float | None  # measured: what a training step adds, per image (largest over seeds)
    predicted_bytes_per_image: float | None  # the graph's prediction of the same
    kept_probe: int  # seeds whose fine-tuning kept the probe's start (kept_epoch 0)
    kept_known: int  # seeds that recorded kept_epoch

    # its configuration's, under the ladder's names
    has_result = property(lambda rung: rung.config.has_result)
    val_mean = property(lambda rung: rung.config.val_mean)
    val_std = property(lambda rung: rung.config.val_std)
    images_per_sec = property(lambda rung: rung.config.train_images_per_sec)

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
    def with_results(self) -> list[Rung]:
        return [r for r in self.rungs if r.has_result]

    @property
    def comparable(self) -> bool:
        """Two or more rungs with results: something to compare."""
        return len(self.with_results) >= 2

    @property
    def plottable(self) -> bool:
        """Two or more rungs with a figure the ladder plot draws."""
        costs = [[r.step_bytes_per_image, r.predicted_bytes_per_image, r.images_per_sec] for r in self.with_results]
        accurate = [not self.standin and r.val_mean is not None for r in self.with_results]
        return sum(a or any(f is not None and f > 0 for f in c) for a, c in zip(accurate, costs)) >= 2


def ladders(records, configs: list[Configuration]) -> list[Ladder]:
    """Every backbone's ladder in the run (sorted by backbone), each at the
    batch size with the most rungs measured; none for a backbone with no
    result in any mode of the ladder. `configs`: the run's configurations,
    whose figures the rungs show."""
    by_key = {config_key(c.row): c for c in configs}
    groups: dict[tuple, dict[int, dict[str, list[dict]]]] = {}
    for record in records:
        mode, batch = record.get("mode"), whole(record.get("batch_size"))
        if mode not in MODES or batch <= 0:
            continue
        key = (str(record.get("backbone")), str(record.get("weights")), str(record.get("device")))
        groups.setdefault(key, {}).setdefault(batch, {}).setdefault(mode, []).append(record)
    backbones = Counter(backbone for backbone, _, _ in groups)
    devices = {device for _, _, device in groups}
    found = []
    for (backbone, weights, device), by_batch in sorted(groups.items()):
        rungs_by_batch = {batch: _rungs(by_mode, by_key) for batch, by_mode in by_batch.items()}
        batch = max(rungs_by_batch, key=lambda b: (sum(r.has_result for r in rungs_by_batch[b]), b))
        rungs = rungs_by_batch[batch]
        if not any(r.has_result for r in rungs):
            continue
        label = backbone
        if backbones[backbone] > 1:
            label += f" ({weights.split(':', 1)[0]}" + (f", {device})" if len(devices) > 1 else ")")
        elif len(devices) > 1:
            label += f" ({device})"
        others = tuple(sorted(b for b in rungs_by_batch if b != batch))
        found.append(Ladder(backbone, label, weights, device, batch, others, tuple(rungs)))
    return found


def _rungs(by_mode: dict[str, list[dict]], configs: dict[tuple, Configuration]) -> list[Rung]:
    trained = [r for mode, group in by_mode.items() if mode != "transfer" for r in group]
    total = _most_common(r.get("backbone_variables") for r in trained)
    return [_rung(m, by_mode[m], configs[config_key(by_mode[m][0])], total) for m in MODES if m in by_mode]


def _rung(mode: str, group: list[dict], config: Configuration, backbone_variables: int | None) -> Rung:
    ok = [r for r in group if has_result(r)]
    failed = Counter(no_result_status(r) for r in group if r not in ok)
    batch = whole(group[0].get("batch_size"))

    def largest(field: str) -> float | None:
        values = [float(r[field]) for r in ok if finite(r.get(field)) is not None]
        return max(values) if values else None

    measured, predicted = largest("activation_memory_bytes"), largest("predicted_activation_bytes")
    # Records that lack the batch's figure have the per-image one.
    predicted = predicted / batch if predicted is not None else largest("predicted_activation_bytes_per_image")
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
        step_bytes_per_image=None if measured is None else measured / batch,
        predicted_bytes_per_image=predicted,
        kept_probe=sum(1 for epoch in kept if epoch == 0),
        kept_known=len(kept),
    )


def _most_common(values):
    """The most frequent int (or str) among `values`, None when there is none."""
    counted = Counter(v for v in values if isinstance(v, (int, str)) and not isinstance(v, bool))
    return counted.most_common(1)[0][0] if counted else None


# ------------------------------------------------------------ the table


def _row(ladder: Ladder, rung: Rung) -> dict:
    return {
        **rung.config.row,  # batch size, mode, status, training images/s and its marks (unstable, timing_quality)
        "backbone": ladder.label,
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
        "kept": (rung.kept_probe, rung.kept_known) if rung.mode != "transfer" and rung.kept_known else None,
    }


def _variables(row: dict) -> str | None:
    trained, total = row["variables"], row["backbone_variables"]
    if trained is None:
        return None
    return f"{trained:,}" if total is None else f"{trained:,} of {total:,}"


def _counts(failed: dict) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(failed.items()))


def _seeds(row: dict) -> str:
    if not row["failed"]:
        return str(row["seeds"])
    return f"{row['seeds'] - sum(row['failed'].values())} of {row['seeds']} ok ({_counts(row['failed'])})"


def _accuracy(key: str):
    def cell(row: dict) -> str | None:
        if row["standin"]:
            return "stand-in"
        mean, std = row[key]
        return None if mean is None else formats.mean_and_std(mean, std)

    return cell


def _kept(row: dict) -> str | None:
    return None if row["kept"] is None else f"{row['kept'][0]}/{row['kept'][1]} seeds"


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
    Column("step mem/img MiB", "step_per_image", formats.mib),
    Column("pred/img MiB", "predicted_per_image", formats.mib),
    Column("train img/s", "train_images_per_sec", formats.rate, figures=TRAIN),
    # Seeds whose fine-tuning kept the linear probe's start (kept_epoch 0): their accuracy is the probe's.
    Column("kept probe", _kept),
)


def table_rows(found: list[Ladder]) -> list[dict]:
    return [_row(ladder, rung) for ladder in found if ladder.comparable for rung in ladder.rungs]


# ------------------------------------------------------------ the verdict


def _ratio(new, old) -> float | None:
    return new / old if new is not None and old is not None and new > 0 and old > 0 else None


def _memory_cost(lower: Rung, upper: Rung) -> str:
    ratio = _ratio(upper.step_bytes_per_image, lower.step_bytes_per_image)
    if ratio is not None:
        return f"{times(ratio)} the step memory per image"
    ratio = _ratio(upper.predicted_bytes_per_image, lower.predicted_bytes_per_image)
    if ratio is not None:
        return f"{times(ratio)} the step memory per image (predicted; not measured)"
    return "step memory not measured"


def _speed_cost(lower: Rung, upper: Rung) -> str:
    ratio = _ratio(upper.images_per_sec, lower.images_per_sec)
    return "training speed not measured" if ratio is None else f"{times(ratio)} the training images/s"


def _kept_note(rung: Rung) -> str:
    kept = f"; fine-tuning kept the probe's start in {rung.kept_probe}/{rung.kept_known} seeds"
    return kept if rung.kept_probe else ""


def take(ladder: Ladder) -> tuple[Rung, Rung] | None:
    """(the rung to take, the most accurate) on validation accuracy; None for
    stand-in weights or fewer than two rungs with a validation accuracy."""
    judged = [(r, r.val_mean) for r in ladder.with_results if r.val_mean is not None]
    if ladder.standin or len(judged) < 2:
        return None
    best, _ = max(judged, key=lambda pair: pair[1])  # ties: the shallowest
    return next(r for r, _ in judged if rungs_within_noise(r, best)), best


def verdict(ladder: Ladder) -> str:
    """One paragraph: what each step up the ladder buys and costs, and the rung to take."""
    others = ", ".join(map(str, ladder.other_batch_sizes))
    others = f"; the run also has batch {others}" if others else ""
    head = f"**{ladder.label}** (batch {ladder.batch_size}{others})"
    measured = ladder.with_results
    failures = [
        f"No result for {r.mode} at batch {ladder.batch_size}: {_counts(r.failed)} of {r.seeds} trials."
        for r in ladder.rungs
        if not r.has_result
    ]
    if len(measured) < 2:
        only = measured[0].mode if measured else "none"
        text = f"{head}: only one rung of the ladder has results ({only}), so there is nothing to compare."
        return " ".join([text, *failures])
    steps = []
    for lower, upper in pairwise(measured):
        costs = f"{_memory_cost(lower, upper)} and {_speed_cost(lower, upper)}"
        if ladder.standin or lower.val_mean is None or upper.val_mean is None:
            steps.append(f"{lower.mode} → {upper.mode}: {costs}")
        else:
            steps.append(
                f"{lower.mode} → {upper.mode}: {points(upper.val_mean - lower.val_mean)} of validation accuracy "
                f"({lower.val_mean:.3f} → {upper.val_mean:.3f}{_kept_note(upper)}) for {costs}"
            )
    sentences = [f"{head}: " + "; ".join(steps) + "."]
    sentences += failures
    if ladder.standin:
        sentences.append(
            "Its weights are a stand-in (random initialisation), so the accuracy comparison needs pretrained "
            "weights; only the costs above hold."
        )
        return " ".join(sentences)
    chosen = take(ladder)
    if chosen is None:
        sentences.append("Fewer than two rungs recorded a validation accuracy: no rung is recommended.")
        return " ".join(sentences)
    rung, best = chosen
    shallower = [r for r in measured[: measured.index(rung)] if r.val_mean is not None]
    if rung is not best:
        why = (
            f"the shallowest rung within noise of the most accurate ({rung.val_mean:.3f} against {best.mode}'s "
            f"{best.val_mean:.3f} validation accuracy); training deeper costs memory and speed for no clear gain"
        )
    elif shallower:
        why = f"the most accurate rung ({best.val_mean:.3f} validation accuracy), beyond noise of every shallower one"
    else:
        why = (
            f"it is the most accurate rung ({best.val_mean:.3f} validation accuracy); training deeper does not pay here"
        )
    sentences.append(f"Take **{rung.mode}**: {why}.")
    if any(r.val_std is None for r in measured if r.val_mean is not None):
        sentences.append(ONE_SEED_RUNGS)
    return " ".join(sentences)


def summary(found: list[Ladder]) -> str | None:
    """A line for the backbones whose ladder has a single rung with results;
    None when every ladder has more. When no backbone has two, the line names
    the rungs, not the backbones (the trials table lists those)."""
    single = [ladder for ladder in found if not ladder.comparable]
    if not single:
        return None
    more = f"Run more modes (`--mode {' '.join(MODES)}`) to see what training deeper buys."
    if len(single) == len(found):
        rungs = sorted({ladder.with_results[0].mode for ladder in single}, key=mode_order)
        return f"Only one rung of the ladder ran per backbone ({', '.join(rungs)}): there is nothing to compare. {more}"
    names = ", ".join(f"{ladder.label} ({ladder.with_results[0].mode})" for ladder in single)
    return f"Only one rung of the ladder ran for {names}: nothing to compare there. {more}"
