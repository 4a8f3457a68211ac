"""The report's plots, as PNG files beside it (matplotlib, no display):

- memory.png: peak memory and what a training step adds, against batch size,
  per backbone and mode: fine-tuning's activation cost made visible;
- throughput.png: training and inference images/s against batch size;
- accuracy_vs_throughput.png: mean test accuracy (bars: one standard
  deviation over seeds) against training images/s, the Pareto front marked;
- ladder.png: per backbone, the rungs of trainable depth (transfer ..
  finetune) against validation accuracy, step memory per image and training
  images/s: does fine-tuning pay (ladder.py).
"""

from __future__ import annotations

from pathlib import Path

from tlbench.registry import MODES
from tlbench.reports.analysis import configurations
from tlbench.reports.decide import measured, pareto_front
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
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    configs = measured(configurations(records))
    written = {}
    if configs:
        for name, draw in ((MEMORY_PNG, _memory), (THROUGHPUT_PNG, _throughput), (PARETO_PNG, _pareto)):
            path = folder / name
            _save(draw(configs), path)
            written[name] = path
    compared = [ladder for ladder in ladders(records) if ladder.plottable]
    if compared:
        path = folder / LADDER_PNG
        _save(_ladder(compared), path)
        written[LADDER_PNG] = path
    return written


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
    log scale): a line per backbone (colour) and mode (dashes)."""
    import matplotlib.pyplot as plt

    colours = _colours(configs)
    figure, all_axes = plt.subplots(1, len(panels), figsize=(12, 4.2), layout="constrained")
    for axes, (title, value, ylabel, log) in zip(all_axes, panels):
        for backbone, mode, group in _lines(configs):
            points = [(c.batch_size, value(c)) for c in group if value(c) is not None]
            if points:
                sizes, values = zip(*points)
                axes.plot(
                    sizes,
                    values,
                    color=colours[backbone],
                    linestyle=MODE_STYLE.get(mode, ":"),
                    marker=MODE_MARKER.get(mode, "x"),
                    label=f"{backbone} {mode}",
                )
        axes.set_title(title)
        axes.set_xticks(_batch_sizes(configs))
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        axes.grid(alpha=0.3, which="both")
    handles, labels = all_axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize=8)  # outside the data
    return figure


def _mib(value):
    return None if value is None else value / 2**20


def _pareto(configs):
    import matplotlib.pyplot as plt

    colours = _colours(configs)
    front = pareto_front(configs)
    figure, axes = plt.subplots(figsize=(8, 5))
    for c in configs:
        axes.errorbar(
            c.train_images_per_sec,
            c.test_mean,
            yerr=c.test_std or 0.0,
            fmt=MODE_MARKER.get(c.mode, "x"),
            color=colours[c.backbone],
            markersize=9 if c in front else 6,
            capsize=3,
        )
        axes.annotate(
            f"{c.mode} bs{c.batch_size}",
            (c.train_images_per_sec, c.test_mean),
            fontsize=7,
            xytext=(5, 4),
            textcoords="offset points",
        )
    ordered = sorted(front, key=lambda c: c.train_images_per_sec)
    axes.plot(
        [c.train_images_per_sec for c in ordered],
        [c.test_mean for c in ordered],
        color="black",
        linewidth=1,
        linestyle=":",
        label="Pareto front",
    )
    for backbone, colour in colours.items():
        axes.plot([], [], "o", color=colour, label=backbone)
    for mode in sorted({c.mode for c in configs}, key=mode_order):
        axes.plot([], [], MODE_MARKER.get(mode, "x"), color="grey", label=mode)
    axes.set_xscale("log")
    axes.set_xlabel("training images/s (log scale)")
    axes.set_ylabel("test accuracy (mean over seeds)")
    axes.set_title("Accuracy against training speed")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    return figure


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
    figure.legend(handles=handles, loc="outside right upper", fontsize=8)
    figure.suptitle("Does fine-tuning pay? Trainable depth against accuracy and cost")
    return figure


def _save(figure, path: Path) -> None:
    """Written to a temporary sibling and renamed: never half a PNG."""
    import matplotlib.pyplot as plt

    staging = path.with_name(f".{path.name}.tmp")
    if figure.get_layout_engine() is None:  # a figure made with layout="constrained" lays itself out
        figure.tight_layout()
    figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)
    staging.replace(path)
