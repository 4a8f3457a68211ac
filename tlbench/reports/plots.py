"""The report's plots, as PNG files beside it (matplotlib, no display):

- memory.png: peak memory and what a training step adds, against batch size,
  per backbone and mode: fine-tuning's activation cost made visible;
- throughput.png: training and inference images/s against batch size;
- accuracy_vs_throughput.png: mean test accuracy (bars: one standard
  deviation over seeds) against training images/s, the Pareto front marked;
- ladder.png: per backbone, the rungs of trainable depth (transfer ..
  finetune) against validation accuracy, step memory per image and training
  images/s: does fine-tuning pay (ladder.py).

Each mode has its own line style and marker, each backbone its colour; the
legend sits right of the panels, never over the data, with samples long
enough to show a dash pattern; point labels are placed apart in pixels.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from tlbench.registry import MODES
from tlbench.reports.analysis import configurations
from tlbench.reports.decide import measured, pareto_front, ranks_on_accuracy
from tlbench.reports.ladder import ladders, mode_order

MEMORY_PNG = "memory.png"
THROUGHPUT_PNG = "throughput.png"
PARETO_PNG = "accuracy_vs_throughput.png"
LADDER_PNG = "ladder.png"
# Per mode, shallowest to deepest: a line style (against batch size) and a marker (accuracy against speed).
MODE_STYLE = {"transfer": "-", "last_block": "-.", "last_stage": (0, (1, 1)), "finetune": "--"}
MODE_MARKER = {"transfer": "o", "last_block": "^", "last_stage": "D", "finetune": "s"}


def write_plots(records, folder: Path) -> dict[str, Path]:
    """{plot file name: path} for the plots the records can fill; none when
    no configuration has its figures."""
    written = {}
    for name, figure in figures(records).items():
        path = folder / name
        _save(figure, path)
        written[name] = path
    return written


def figures(records) -> dict:
    """{plot file name: matplotlib figure} for the plots the records can
    fill. The caller closes them (`_save` does)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    configs = measured(configurations(records))
    drawn = {}
    if configs:
        for name, draw in ((MEMORY_PNG, _memory), (THROUGHPUT_PNG, _throughput), (PARETO_PNG, _pareto)):
            drawn[name] = draw(configs)
    compared = [ladder for ladder in ladders(records) if ladder.plottable]
    if compared:
        drawn[LADDER_PNG] = _ladder(compared)
    return drawn


def _lines(configs):
    """(backbone, mode, configs sorted by batch size) per backbone x mode."""
    groups = {}
    for c in configs:
        groups.setdefault((c.backbone, c.mode), []).append(c)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], mode_order(item[0][1])))  # shallowest first
    return [(b, m, sorted(group, key=lambda c: c.batch_size)) for (b, m), group in ordered]


def _batch_sizes(configs) -> list[int]:
    return sorted({c.batch_size for c in configs})


def _colours(configs) -> dict[str, str]:
    backbones = sorted({c.backbone for c in configs})
    return {b: f"C{i % 10}" for i, b in enumerate(backbones)}


def _memory(configs):
    return _against_batch_size(
        configs,
        [
            ("Peak memory during training steps", lambda c: _mib(c.peak_memory_bytes), "MiB", False),
            ("What a training step adds (activations)", lambda c: _mib(c.activation_memory_bytes), "MiB", False),
        ],
    )


def _throughput(configs):
    return _against_batch_size(
        configs,
        [
            ("Training throughput", lambda c: c.train_images_per_sec, "images/s (log scale)", True),
            ("Inference throughput", lambda c: c.infer_images_per_sec, "images/s (log scale)", True),
        ],
    )


def _against_batch_size(configs, panels):
    """Side by side, one panel per (title, value of a configuration, y label,
    log scale): a line per backbone (colour) and mode (line style and marker)."""
    import matplotlib.pyplot as plt

    colours = _colours(configs)
    figure, all_axes = plt.subplots(1, len(panels), figsize=(12, 4.2), layout="constrained")
    for axes, (title, value, ylabel, log) in zip(all_axes, panels):
        for backbone, mode, group in _lines(configs):
            points = [(c.batch_size, value(c)) for c in group if value(c) is not None]
            if points:
                sizes, values = zip(*points)
                axes.plot(sizes, values, color=colours[backbone], label=f"{backbone} {mode}", **_mode_style(mode))
        if not axes.get_lines():  # e.g. records of a version that did not measure it
            axes.text(0.5, 0.5, "not recorded in these trials", transform=axes.transAxes, ha="center", color="grey")
        axes.set_title(title)
        axes.set_xticks(_batch_sizes(configs))
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        axes.grid(alpha=0.3, which="both")
    _legend(figure, [("backbone", _backbone_handles(colours)), ("mode (trainable depth)", _mode_handles(configs))])
    return figure


def _mode_style(mode: str) -> dict:
    return {"linestyle": MODE_STYLE.get(mode, ":"), "marker": MODE_MARKER.get(mode, "x")}


def _backbone_handles(colours: dict[str, str]) -> list:
    from matplotlib.patches import Patch

    return [Patch(color=colour, label=backbone) for backbone, colour in colours.items()]


def _mode_handles(configs, **style) -> list:
    from matplotlib.lines import Line2D

    modes = sorted({c.mode for c in configs}, key=mode_order)
    return [Line2D([], [], color="dimgrey", label=mode, **{**_mode_style(mode), **style}) for mode in modes]


# Legend samples this many font sizes long show a dash pattern (matplotlib's 2 hide "-." against "--").
HANDLE_LENGTH = 5


def _legend(figure, sections):
    """One legend right of the axes, never over the data, of (heading or
    None, handles) sections; headings in bold."""
    from matplotlib.lines import Line2D

    handles, headings = [], []
    for heading, section in sections:
        if heading is not None:
            headings.append(len(handles))
            handles.append(Line2D([], [], linestyle="none", label=heading))
        handles += section
    legend = figure.legend(handles=handles, loc="outside right upper", fontsize=8, handlelength=HANDLE_LENGTH)
    for index in headings:
        legend.get_texts()[index].set_fontweight("bold")
    return legend


def _mib(value):
    return None if value is None else value / 2**20


def _pareto(configs):
    """Each configuration a point (colour: backbone, marker: mode) labelled
    with its mode and batch size, the labels kept apart (`_place_labels`)."""
    import matplotlib.pyplot as plt

    colours = _colours(configs)
    front = pareto_front(configs)
    figure, axes = plt.subplots(figsize=(10, 6), layout="constrained")
    points = []
    for c in configs:
        markersize = 9 if c in front else 6
        # Hollow: an accuracy that ranks nothing (stand-in weights, chance level), labelled why.
        hollow = {} if ranks_on_accuracy(c) else {"markerfacecolor": "white"}
        axes.errorbar(
            c.train_images_per_sec,
            c.test_mean,
            yerr=c.test_std or 0.0,
            fmt=MODE_MARKER.get(c.mode, "x"),
            color=colours[c.backbone],
            markersize=markersize,
            capsize=3,
            label=f"{c.backbone} {c.mode} bs{c.batch_size}",
            **hollow,
        )
        points.append((c.train_images_per_sec, c.test_mean, c.test_std or 0.0, markersize, colours[c.backbone]))
    front_xy = sorted((c.train_images_per_sec, c.test_mean) for c in front)  # may be none (decide.pareto_front)
    (front_line,) = axes.plot(
        [x for x, _ in front_xy],
        [y for _, y in front_xy],
        color="black",
        linewidth=1,
        linestyle=":",
        label="Pareto front",
    )
    axes.set_xscale("log")
    axes.margins(x=0.12, y=0.12)  # room for the labels of the outermost points
    axes.set_xlabel("training images/s (log scale)")
    axes.set_ylabel("test accuracy (mean over seeds)")
    axes.set_title("Accuracy against training speed")
    axes.grid(alpha=0.3, which="both")
    modes = _mode_handles(configs, linestyle="none")  # markers alone, as drawn
    fronts = [front_line] if front_xy else []
    _legend(figure, [(None, fronts), ("backbone", _backbone_handles(colours)), ("mode", modes)])
    _place_labels(figure, axes, points, [f"{c.mode} bs{c.batch_size}{_unranked_note(c)}" for c in configs], [front_xy])
    return figure


def _unranked_note(c) -> str:
    """Why a point's accuracy ranks nothing, for its label."""
    if ranks_on_accuracy(c):
        return ""
    return " (chance)" if c.at_chance else " (stand-in)"


# Pixels kept clear around a point label; rings of candidate spots tried around its point, and directions per ring.
LABEL_GAP = 2.0
LABEL_RINGS = 24
LABEL_DIRECTIONS = 24
LABEL_TEXT = {"xytext": (0, 0), "textcoords": "offset points", "ha": "center", "va": "center", "fontsize": 7.5}


def _place_labels(figure, axes, points, texts, lines=()):
    """Each point's (x, y, yerr, marker size, colour) label goes to the first
    spot, on widening rings around the point (to its right first), inside
    the axes and clear of every marker, error bar and label placed before,
    and if it can be, of `lines` (polylines in data coordinates) and the
    leaders drawn so far; else to the spot that overlaps fewest. A thin
    leader runs back from a label that had to move out."""
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
        hard.append([centre - half, low - half, centre + half, high + half])
    # Right first, then alternately above and below it, working round to the left.
    turns = sorted(range(-LABEL_DIRECTIONS // 2 + 1, LABEL_DIRECTIONS // 2 + 1), key=lambda k: (abs(k), -k))
    directions = [(math.cos(angle), math.sin(angle)) for angle in 2 * math.pi * np.array(turns) / LABEL_DIRECTIONS]
    for (x, y, _, markersize, colour), text in zip(points, texts):
        leader = {"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 0, "shrinkB": markersize / 2}
        label = axes.annotate(text, (x, y), color=colour, arrowprops=leader, **LABEL_TEXT)
        box = Text.get_window_extent(label, renderer)  # the text alone: an Annotation's adds its leader
        width, height = box.width + 2 * LABEL_GAP, box.height + 2 * LABEL_GAP
        clearance = markersize / 2 * pixels + LABEL_GAP
        anchor = axes.transData.transform((x, y))
        boxes, lines_near = np.array(hard), np.concatenate([np.empty((0, 4)), *soft])
        half = np.array([width / 2, height / 2])
        beside = np.array([clearance + width / 2, 0.0])
        best = (math.inf, math.inf), 0, beside, np.concatenate([anchor + beside - half, anchor + beside + half])
        for ring in range(LABEL_RINGS):
            reach = clearance + ring * height / 2
            for cos, sin in directions:
                offset = np.array([cos * (width / 2 + reach), sin * (height / 2 + reach)])
                spot = np.concatenate([anchor + offset - half, anchor + offset + half])
                if (spot[:2] < frame[:2]).any() or (spot[2:] > frame[2:]).any():
                    continue  # out of the axes
                clashes = (_clashes(boxes, spot), _clashes(lines_near, spot))
                if clashes < best[0]:
                    best = clashes, ring, offset, spot
            if best[0] == (0, 0):
                break
        _, ring, offset, spot = best
        label.xyann = tuple(offset / pixels)
        label.arrow_patch.set_visible(ring > 0)
        hard.append(spot)
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


_KEPT_PROBE = {"linestyle": "none", "marker": "o", "markersize": 12, "markerfacecolor": "none"}


def _ladder(found):
    """Three panels sharing x, the rungs of trainable depth present (MODES
    order): validation accuracy (bars: one standard deviation over seeds; not
    for stand-in weights), step memory per image (measured: solid, predicted
    by the graph: dotted) and training images/s. A line per backbone; a ring
    where fine-tuning kept the probe's start in most seeds."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogFormatter

    modes = [m for m in MODES if any(r.mode == m for ladder in found for r in ladder.measured)]
    x = {mode: i for i, mode in enumerate(modes)}
    colours = {ladder.label: f"C{i % 10}" for i, ladder in enumerate(found)}
    figure, (accuracy, memory, speed) = plt.subplots(1, 3, figsize=(13, 4.4), sharex=True, layout="constrained")
    memory.set_yscale("log")
    speed.set_yscale("log")

    def line(axes, ladder, value, rings=True, **style):
        """The rungs' values (positive ones on a log scale), a ring on those that kept the probe."""
        rungs = [r for r in ladder.measured if value(r) is not None]
        rungs = [r for r in rungs if axes.get_yscale() != "log" or value(r) > 0]
        if not rungs:
            return
        colour = colours[ladder.label]
        axes.plot([x[r.mode] for r in rungs], [value(r) for r in rungs], color=colour, **style)
        kept = [r for r in rungs if r.mostly_kept_probe] if rings else []
        if kept:
            axes.plot([x[r.mode] for r in kept], [value(r) for r in kept], markeredgecolor=colour, **_KEPT_PROBE)

    for ladder in found:
        judged = [] if ladder.standin else [r for r in ladder.measured if r.val_mean is not None]
        if judged:
            accuracy.errorbar(
                [x[r.mode] for r in judged],
                [r.val_mean for r in judged],
                yerr=[r.val_std or 0.0 for r in judged],
                color=colours[ladder.label],
                fmt="none",  # the bars only: `line` draws the means
                capsize=3,
            )
            line(accuracy, ladder, lambda r: r.val_mean, marker="o")
        line(memory, ladder, lambda r: _mib(r.step_bytes_per_image), marker="o")
        line(memory, ladder, lambda r: _mib(r.predicted_bytes_per_image), False, linestyle=":", marker="x")
        line(speed, ladder, lambda r: r.images_per_sec, marker="o")
    standins = [ladder.label for ladder in found if ladder.standin]
    accuracy.set_title("Validation accuracy" + (" (pretrained weights only)" if standins else ""))
    accuracy.set_ylabel("validation accuracy (mean ± std over seeds)")
    memory.set_title("What a training step adds, per image")
    memory.set_ylabel("MiB per image (log scale)")
    speed.set_title("Training throughput")
    speed.set_ylabel("training images/s (log scale)")
    for axes in (accuracy, memory, speed):
        axes.set_xticks(range(len(modes)), modes)
        axes.set_xlim(-0.3, len(modes) - 0.7)
        axes.grid(alpha=0.3, which="both")
    for axes in (memory, speed):
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.5, 10, 100: not 10^1
        # Within a decade, some minor ticks labelled as plain numbers (400, not 4x10^2).
        axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    figure.supxlabel("trainable depth (shallowest to deepest)")
    handles = [Line2D([], [], color=colours[ladder.label], marker="o", label=ladder.label) for ladder in found]
    handles += [
        Line2D([], [], color="grey", marker="o", label="step memory: measured"),
        Line2D([], [], color="grey", marker="x", linestyle=":", label="step memory: predicted"),
        Line2D([], [], color="grey", label="fine-tuning kept the\nprobe's start (most seeds)", **_KEPT_PROBE),
    ]
    if standins:
        label = "stand-in weights, no accuracy:\n" + ", ".join(standins)
        handles.append(Line2D([], [], linestyle="none", label=label))
    _legend(figure, [(None, handles)])
    figure.suptitle("Does fine-tuning pay? Trainable depth against accuracy and cost")
    return figure


def _save(figure, path: Path) -> None:
    """Rendered in memory, then written atomically: never half a PNG, and no
    temporary file left when the write fails (a full disk, a read-only folder)."""
    import io

    import matplotlib.pyplot as plt

    from tlbench.files import write_bytes_atomic

    png = io.BytesIO()
    try:
        if figure.get_layout_engine() is None:  # a figure made with layout="constrained" lays itself out
            figure.tight_layout()
        figure.savefig(png, dpi=110, format="png")
    finally:
        plt.close(figure)
    write_bytes_atomic(path, png.getvalue())
