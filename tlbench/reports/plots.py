"""The report's plots, as PNG files beside it (matplotlib, no display): memory and throughput against batch size,
test accuracy against training speed (Pareto front marked), the ladder of trainable depth (ladder.py). Each mode has
its own line style and marker, each backbone its colour; the legend sits right of the panels, never over the data,
with samples long enough to show a dash pattern; point labels are placed apart in pixels."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from tlbench.files import write_bytes_atomic
from tlbench.registry import MODES
from tlbench.reports.decide import pareto_front, with_all_figures
from tlbench.reports.ladder import mode_order
from tlbench.reports.rules import ranks_on_accuracy

MEMORY_PNG = "memory.png"
THROUGHPUT_PNG = "throughput.png"
PARETO_PNG = "accuracy_vs_throughput.png"
LADDER_PNG = "ladder.png"
# Per mode, shallowest to deepest: a line style (against batch size) and a marker (accuracy against speed).
MODE_STYLE = {"transfer": "-", "last_block": "-.", "last_stage": (0, (1, 1)), "finetune": "--"}
MODE_MARKER = {"transfer": "o", "last_block": "^", "last_stage": "D", "finetune": "s"}
# Legend samples this many font sizes long show a dash pattern (matplotlib's 2 hide "-." against "--").
HANDLE_LENGTH = 5
# Pixels kept clear around a point label; rings of candidate spots tried around its point, and directions per ring.
LABEL_GAP, LABEL_RINGS, LABEL_DIRECTIONS = 2.0, 24, 24
LABEL_TEXT = {"xytext": (0, 0), "textcoords": "offset points", "ha": "center", "va": "center", "fontsize": 7.5}
# The ladder's ring where fine-tuning kept the probe's start.
_KEPT_PROBE: dict[str, Any] = {"linestyle": "none", "marker": "o", "markersize": 12, "markerfacecolor": "none"}
# The plots against batch size, each of panels (title, value of a configuration, y label, log scale).
AGAINST_BATCH_SIZE = {
    MEMORY_PNG: [
        ("Peak memory during training steps", lambda c: _mib(c.peak_memory_bytes), "MiB", False),
        ("What a training step adds (activations)", lambda c: _mib(c.activation_memory_bytes), "MiB", False),
    ],
    THROUGHPUT_PNG: [
        ("Training throughput", lambda c: c.train_images_per_sec, "images/s (log scale)", True),
        ("Inference throughput", lambda c: c.infer_images_per_sec, "images/s (log scale)", True),
    ],
}


def write_plots(analysis, folder: Path) -> dict[str, Path]:
    """{plot file name: path} for the plots a run (analysis.RunAnalysis) can fill; none when no configuration has its
    figures. Each is rendered in memory, then written atomically: never half a PNG, and no temporary file left when
    the write fails (a full disk, a read-only folder)."""
    import matplotlib.pyplot as plt

    drawn = figures(analysis)
    for name, figure in drawn.items():
        png = io.BytesIO()
        try:
            figure.savefig(png, dpi=110, format="png")  # each figure laid out by its own engine (constrained)
        finally:
            plt.close(figure)
        write_bytes_atomic(folder / name, png.getvalue())
    return {name: folder / name for name in drawn}


def figures(analysis) -> dict:
    """{plot file name: matplotlib figure} for the plots a run can fill. The caller closes them (`write_plots` does)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    drawn: dict = {}
    if configs := with_all_figures(analysis.configurations):
        drawn = {name: _against_batch_size(configs, panels) for name, panels in AGAINST_BATCH_SIZE.items()}
        drawn[PARETO_PNG] = _pareto(configs)
    if compared := [ladder for ladder in analysis.ladders if ladder.plottable]:
        drawn[LADDER_PNG] = _ladder(compared)
    return drawn


def _mib(value):
    return None if value is None else value / 2**20


def _colours(names) -> dict[str, str]:
    """Matplotlib's colour cycle, one colour per backbone (or ladder) in order."""
    return {name: f"C{i % 10}" for i, name in enumerate(names)}


def _frame(axes, title: str, ylabel: str, xlabel: str = "", log: bool = False, **more) -> None:
    """A panel's title, axis labels, log y axis if asked, a faint grid (minor ticks too), and `more` of `axes.set`."""
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel, **({"yscale": "log"} if log else {}), **more)
    axes.grid(alpha=0.3, which="both")


def _against_batch_size(configs, panels):
    """Side by side, a panel per AGAINST_BATCH_SIZE entry: a line per backbone (colour) and mode (style, marker)."""
    import matplotlib.pyplot as plt

    colours = _colours(sorted({c.backbone for c in configs}))
    # A line per backbone and mode, shallowest mode first, its points by batch size.
    ordered = sorted(configs, key=lambda c: (c.backbone, mode_order(c.mode), c.batch_size))
    lines = [(key, list(group)) for key, group in itertools.groupby(ordered, lambda c: (c.backbone, c.mode))]
    figure, all_axes = plt.subplots(1, len(panels), figsize=(12, 4.2), layout="constrained")
    for axes, (title, value, ylabel, log) in zip(all_axes, panels):
        for (backbone, mode), group in lines:
            if points := [(c.batch_size, value(c)) for c in group if value(c) is not None]:
                axes.plot(*zip(*points), color=colours[backbone], label=f"{backbone} {mode}", **_mode_style(mode))
        if not axes.get_lines():  # e.g. records of a version that did not measure it
            axes.text(0.5, 0.5, "not recorded in these trials", transform=axes.transAxes, ha="center", color="grey")
        _frame(axes, title, ylabel, "batch size", log, xticks=sorted({c.batch_size for c in configs}))
    _legend(figure, _key(colours, configs, "mode (trainable depth)"))
    return figure


def _mode_style(mode: str) -> dict[str, Any]:
    return {"linestyle": MODE_STYLE.get(mode, ":"), "marker": MODE_MARKER.get(mode, "x")}


def _sample(label: str, **style) -> Any:
    """A legend entry: a line of no data, drawn with `style`."""
    from matplotlib.lines import Line2D

    return Line2D([], [], label=label, **style)


def _key(colours: dict[str, str], configs, modes_heading: str, **style) -> list:
    """The legend entries of the backbones (their colours) and of the modes (their looks, `style` over them)."""
    from matplotlib.patches import Patch

    modes = sorted({c.mode for c in configs}, key=mode_order)
    looks = [_sample(mode, color="dimgrey", **{**_mode_style(mode), **style}) for mode in modes]
    return ["backbone", *[Patch(color=colour, label=b) for b, colour in colours.items()], modes_heading, *looks]


def _legend(figure, entries: list) -> None:
    """One legend right of the axes, never over the data, of handles and headings (str, in bold)."""
    handles = [_sample(entry, linestyle="none") if isinstance(entry, str) else entry for entry in entries]
    legend = figure.legend(handles=handles, loc="outside right upper", fontsize=8, handlelength=HANDLE_LENGTH)
    for text, entry in zip(legend.get_texts(), entries):
        text.set_fontweight("bold" if isinstance(entry, str) else "normal")


def _pareto(configs):
    """Each configuration a point (colour: backbone, marker: mode) labelled with its mode and batch size, the labels
    kept apart (`_place_labels`); hollow and labelled why when its accuracy ranks nothing (stand-in weights, chance)."""
    import matplotlib.pyplot as plt

    colours = _colours(sorted({c.backbone for c in configs}))
    front = pareto_front(configs)
    figure, axes = plt.subplots(figsize=(10, 6), layout="constrained")
    points, texts = [], []
    for c in configs:
        point = (c.train_images_per_sec, c.test_mean, c.test_std or 0.0, 9 if c in front else 6, colours[c.backbone])
        x, y, yerr, size, colour = point
        hollow = {} if (ranks := ranks_on_accuracy(c)) else {"markerfacecolor": "white"}
        style: dict[str, Any] = {"fmt": MODE_MARKER.get(c.mode, "x"), "color": colour, "markersize": size, **hollow}
        axes.errorbar(x, y, yerr, capsize=3, label=f"{c.backbone} {c.mode} bs{c.batch_size}", **style)
        points.append(point)
        texts.append(f"{c.mode} bs{c.batch_size}" + ("" if ranks else " (chance)" if c.at_chance else " (stand-in)"))
    front_xy = sorted((c.train_images_per_sec, c.test_mean) for c in front)  # may be none (decide.pareto_front)
    (front_line,) = axes.plot(*np.array(front_xy, float).reshape(-1, 2).T, "k:", linewidth=1, label="Pareto front")
    axes.set_xscale("log")
    axes.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
    _frame(axes, "Accuracy against training speed", "test accuracy (mean over seeds)", "training images/s (log scale)")
    fronts = [front_line] if front_xy else []
    _legend(figure, fronts + _key(colours, configs, "mode", linestyle="none"))  # the modes' markers alone, as drawn
    _place_labels(figure, axes, points, texts, [front_xy])
    return figure


def _place_labels(figure, axes, points, texts, lines=()):
    """Each point's (x, y, yerr, marker size, colour) label goes to the first spot, on widening rings around the point
    (to its right first), inside the axes and clear of every marker, error bar and label placed before, and if it can
    be, of `lines` (polylines in data coordinates) and the leaders drawn so far; else to the spot that overlaps fewest.
    A thin leader runs back from a label that had to move out."""
    from matplotlib.text import Text

    figure.canvas.draw()  # the layout done (legend, titles) and the texts' sizes known
    figure.set_layout_engine("none")  # then frozen: the pixels reckoned below stay true when saved
    renderer = figure.canvas.get_renderer()
    pixels = figure.dpi / 72  # per point
    frame = np.array(axes.get_window_extent(renderer).extents)
    # Boxes (x0, y0, x1, y1) in pixels that a label must not meet (hard) or had better not (soft).
    hard, soft = [], [_along(axes.transData.transform(line)) for line in lines if len(line) > 1]
    for x, y, yerr, markersize, _ in points:
        (centre, low), (_, high) = axes.transData.transform([(x, y - yerr), (x, y + yerr)])
        half = max(markersize, 6) / 2 * pixels  # the marker, or the error bar's caps (capsize 3)
        hard.append(np.array([centre - half, low - half, centre + half, high + half]))
    # Right first, then alternately above and below it, working round to the left.
    turns = sorted(range(-LABEL_DIRECTIONS // 2 + 1, LABEL_DIRECTIONS // 2 + 1), key=lambda k: (abs(k), -k))
    directions = [np.array([math.cos(a), math.sin(a)]) for a in 2 * math.pi * np.array(turns) / LABEL_DIRECTIONS]
    for (x, y, _, markersize, colour), text in zip(points, texts):
        leader = {"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 0, "shrinkB": markersize / 2}
        label = axes.annotate(text, (x, y), color=colour, arrowprops=leader, **LABEL_TEXT)
        box = Text.get_window_extent(label, renderer)  # the text alone: an Annotation's adds its leader
        half = (np.array([box.width, box.height]) + 2 * LABEL_GAP) / 2  # of the text's box and its gap
        clearance = markersize / 2 * pixels + LABEL_GAP
        anchor = axes.transData.transform((x, y))
        boxes, lines_near = np.array(hard), np.concatenate([np.empty((0, 4)), *soft])
        best = (math.inf, math.inf), 0, np.array([clearance + half[0], 0.0])  # right beside, when no spot is inside
        for ring in range(LABEL_RINGS):
            reach = clearance + ring * half[1]
            for direction in directions:
                offset = direction * (half + reach)
                spot = np.concatenate([anchor + offset - half, anchor + offset + half])
                if (spot[:2] < frame[:2]).any() or (spot[2:] > frame[2:]).any():
                    continue  # out of the axes
                clashes = (_clashes(boxes, spot), _clashes(lines_near, spot))
                if clashes < best[0]:
                    best = clashes, ring, offset
            if best[0] == (0, 0):
                break
        _, ring, offset = best
        label.xyann = tuple(offset / pixels)
        label.arrow_patch.set_visible(ring > 0)
        hard.append(np.concatenate([anchor + offset - half, anchor + offset + half]))
        if ring > 0:
            soft.append(_along(np.array([anchor, anchor + offset])))


def _along(polyline, step=3.0):
    """Boxes of no size every `step` pixels along a polyline in pixels."""
    parts = []
    for start, end in itertools.pairwise(polyline):
        fractions = np.linspace(0, 1, max(2, int(np.hypot(*(end - start)) / step) + 1))[:, None]
        parts.append(start + fractions * (end - start))
    spots = np.concatenate(parts)
    return np.hstack([spots, spots])


def _clashes(boxes, spot) -> int:
    """How many of `boxes` (rows x0, y0, x1, y1) meet the box `spot`."""
    x0, y0, x1, y1 = spot
    return int(((boxes[:, 0] <= x1) & (x0 <= boxes[:, 2]) & (boxes[:, 1] <= y1) & (y0 <= boxes[:, 3])).sum())


def _ladder(found):
    """Three panels sharing x, the rungs of trainable depth present (MODES order): validation accuracy (bars: one std
    over seeds; none for stand-in weights), step memory per image (measured: solid, the graph's prediction: dotted),
    training images/s. A line per backbone; a ring where fine-tuning kept the probe's start in most seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogFormatter

    modes = [m for m in MODES if any(r.mode == m for ladder in found for r in ladder.with_results)]
    colours = _colours(ladder.label for ladder in found)
    standins = [ladder.label for ladder in found if ladder.standin]
    figure, (accuracy, memory, speed) = plt.subplots(1, 3, figsize=(13, 4.4), sharex=True, layout="constrained")
    title = "Validation accuracy" + (" (pretrained weights only)" if standins else "")
    _frame(accuracy, title, "validation accuracy (mean ± std over seeds)")
    _frame(memory, "What a training step adds, per image", "MiB per image (log scale)", log=True)
    _frame(speed, "Training throughput", "training images/s (log scale)", log=True)
    accuracy.set_xticks(range(len(modes)), modes)  # the other panels' too: they share x
    accuracy.set_xlim(-0.3, len(modes) - 0.7)
    for axes in (memory, speed):
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.5, 10, 100: not 10^1
        # Within a decade, some minor ticks labelled as plain numbers (400, not 4x10^2).
        axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))

    def xy(rungs, value):
        return [modes.index(r.mode) for r in rungs], [value(r) for r in rungs]

    def line(axes, ladder, value, rings=True, **style):
        """The rungs' values (positive ones on a log scale), a ring on those that kept the probe."""
        rungs = [r for r in ladder.with_results if value(r) is not None]
        if rungs := [r for r in rungs if axes.get_yscale() != "log" or value(r) > 0]:
            axes.plot(*xy(rungs, value), color=colours[ladder.label], **style)
            if kept := [r for r in rungs if r.mostly_kept_probe] if rings else []:
                axes.plot(*xy(kept, value), markeredgecolor=colours[ladder.label], **_KEPT_PROBE)

    for ladder in found:
        if judged := [] if ladder.standin else [r for r in ladder.with_results if r.val_mean is not None]:
            bars = [r.val_std or 0.0 for r in judged]  # the bars only (fmt "none"): `line` draws the means
            accuracy.errorbar(
                *xy(judged, lambda r: r.val_mean), bars, color=colours[ladder.label], fmt="none", capsize=3
            )
            line(accuracy, ladder, lambda r: r.val_mean, marker="o")
        line(memory, ladder, lambda r: _mib(r.step_bytes_per_image), marker="o")
        line(memory, ladder, lambda r: _mib(r.predicted_bytes_per_image), False, linestyle=":", marker="x")
        line(speed, ladder, lambda r: r.images_per_sec, marker="o")
    figure.supxlabel("trainable depth (shallowest to deepest)")
    handles = [_sample(ladder.label, color=colours[ladder.label], marker="o") for ladder in found]
    handles += [
        _sample("step memory: measured", color="grey", marker="o"),
        _sample("step memory: predicted", color="grey", marker="x", linestyle=":"),
        _sample("fine-tuning kept the\nprobe's start (most seeds)", color="grey", **_KEPT_PROBE),
    ]
    notes = [_sample("stand-in weights, no accuracy:\n" + ", ".join(standins), linestyle="none")] if standins else []
    _legend(figure, handles + notes)
    figure.suptitle("Does fine-tuning pay? Trainable depth against accuracy and cost")
    return figure
