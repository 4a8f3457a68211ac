"""The report's plots, as PNG files beside it (matplotlib, no display):

- memory.png: peak memory and what a training step adds, against batch size,
  per backbone and mode: fine-tuning's activation cost made visible;
- throughput.png: training and inference images/s against batch size;
- accuracy_vs_throughput.png: mean test accuracy (bars: one standard
  deviation over seeds) against training images/s, the Pareto front marked.
"""

from __future__ import annotations

from pathlib import Path

from tlbench.reports.analysis import configurations
from tlbench.reports.decide import measured, pareto_front

MEMORY_PNG = "memory.png"
THROUGHPUT_PNG = "throughput.png"
PARETO_PNG = "accuracy_vs_throughput.png"
MODE_STYLE = {"transfer": "-", "finetune": "--"}


def write_plots(records, folder: Path) -> dict[str, Path]:
    """{plot file name: path} for the plots the records can fill; none when
    no configuration has its figures."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    configs = measured(configurations(records))
    if not configs:
        return {}
    written = {}
    for name, draw in ((MEMORY_PNG, _memory), (THROUGHPUT_PNG, _throughput), (PARETO_PNG, _pareto)):
        path = folder / name
        _save(draw(configs), path)
        written[name] = path
    return written


def _lines(configs):
    """(backbone, mode, configs sorted by batch size) per backbone x mode."""
    groups = {}
    for c in configs:
        groups.setdefault((c.backbone, c.mode), []).append(c)
    return [(b, m, sorted(group, key=lambda c: c.batch_size)) for (b, m), group in sorted(groups.items())]


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
    figure, all_axes = plt.subplots(1, len(panels), figsize=(11, 4.2))
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
                    marker="o",
                    label=f"{backbone} {mode}",
                )
        axes.set_title(title)
        axes.set_xticks(_batch_sizes(configs))
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        if log:
            axes.set_yscale("log")
        axes.grid(alpha=0.3, which="both")
    all_axes[0].legend(fontsize=8)
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
            fmt="o" if c.mode == "transfer" else "s",
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
    axes.plot([], [], "o", color="grey", label="transfer")
    axes.plot([], [], "s", color="grey", label="finetune")
    axes.set_xscale("log")
    axes.set_xlabel("training images/s (log scale)")
    axes.set_ylabel("test accuracy (mean over seeds)")
    axes.set_title("Accuracy against training speed")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    return figure


def _save(figure, path: Path) -> None:
    """Written to a temporary sibling and renamed: never half a PNG."""
    import matplotlib.pyplot as plt

    staging = path.with_name(f".{path.name}.tmp")
    figure.tight_layout()
    figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)
    staging.replace(path)
