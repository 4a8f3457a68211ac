"""The report's plots as a reader sees them: drawn, then measured in pixels.
Point labels apart and inside the axes, legends off the data, every mode
told apart by its line style and its marker."""

import itertools

import pytest

from tlbench.registry import MODES
import reporting

from tlbench.reports import plots

MIB = 2**20
DPIS = (100, 110)  # matplotlib's own, and the PNGs' (`_save`)

# backbone: {mode: (test accuracy, training images/s at batch 8, peak MiB at batch 8, step MiB per image)}
FIGURES = {
    "mobilenet_v2_100_224": {
        "transfer": (0.902, 96.0, 310, 0.4),
        "last_block": (0.906, 84.0, 340, 1.1),
        "last_stage": (0.911, 63.0, 390, 3.0),
        "finetune": (0.914, 36.0, 620, 12.0),
    },
    "resnet_v2_50": {
        "transfer": (0.931, 24.0, 1100, 0.9),
        "last_block": (0.936, 21.0, 1180, 2.4),
        "last_stage": (0.940, 14.5, 1350, 7.5),
        "finetune": (0.943, 7.1, 2300, 31.0),
    },
}


def run_records(speedup_at_16=1.12, accuracy_drop_at_16=0.002):
    """A run's records: 2 backbones x 4 modes x batch sizes 8 and 16 x 3
    seeds; each configuration's batch 16 close to its batch 8 (the labels
    "transfer bs8" and "transfer bs16" of a first user's run overlapped)."""
    records = []
    for (backbone, modes), batch, seed in itertools.product(FIGURES.items(), (8, 16), range(3)):
        for mode, (accuracy, speed, peak, step) in modes.items():
            at_16 = batch == 16
            speed *= speedup_at_16 if at_16 else 1.0
            records.append(
                {
                    "trial_id": f"{backbone}-{mode}-bs{batch}-digits-seed{seed}",
                    "backbone": backbone,
                    "mode": mode,
                    "batch_size": batch,
                    "dataset": "digits",
                    "seed": seed,
                    "status": "ok",
                    "weights": "tfhub:x",
                    "device": "CPU:x",
                    "test_accuracy": accuracy + 0.004 * (seed - 1) - (accuracy_drop_at_16 if at_16 else 0.0),
                    "val_accuracy": accuracy + 0.004 * (seed - 1),
                    "train_images_per_sec": speed,
                    "infer_images_per_sec": 3.1 * speed,
                    "peak_memory_bytes": round((peak + step * batch) * MIB),
                    "activation_memory_bytes": round(step * batch * MIB),
                    "predicted_activation_bytes": round(0.85 * step * batch * MIB),
                    "kept_epoch": 0 if mode == "last_block" else 2,
                }
            )
    return records


@pytest.fixture
def drawn():
    import matplotlib.pyplot as plt

    figures = reporting.figures(run_records())
    yield figures
    for figure in figures.values():
        plt.close(figure)


def _rendered(figure, dpi):
    figure.set_dpi(dpi)
    figure.canvas.draw()
    return figure.canvas.get_renderer()


def _overlap(a, b) -> bool:
    """Boxes sharing more than an edge."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _inside(inner, outer) -> bool:
    return outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0 and inner.y1 <= outer.y1


@pytest.mark.parametrize(
    "crowding",
    [
        {},  # batch 16 12 % faster than batch 8, 0.2 points less accurate
        {"speedup_at_16": 1.01, "accuracy_drop_at_16": 0.0002},  # all but on top of each other
    ],
    ids=["close", "stacked"],
)
@pytest.mark.parametrize("dpi", DPIS)
def test_point_labels_neither_overlap_nor_leave_the_axes_nor_cover_a_point(crowding, dpi):
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    figure = reporting.figures(run_records(**crowding))[plots.PARETO_PNG]
    try:
        renderer = _rendered(figure, dpi)
        (axes,) = figure.axes
        labels = axes.texts
        assert sorted(label.get_text() for label in labels) == sorted(
            f"{mode} bs{batch}" for mode in MODES for batch in (8, 16) for _ in FIGURES
        )
        # The text's box (an Annotation's own extent adds its leader line).
        boxes = {f"{label.get_text()} {label.get_color()}": Text.get_window_extent(label, renderer) for label in labels}
        frame = axes.get_window_extent(renderer)
        for name, box in boxes.items():
            assert _inside(box, frame), f"{name} leaves the axes"
        for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
            assert not _overlap(box_a, box_b), f"{a} overlaps {b}"
        points = axes.transData.transform([label.xy for label in labels])
        for (name, box), (x, y) in itertools.product(boxes.items(), points):
            assert not box.contains(x, y), f"{name} covers a point"
    finally:
        plt.close(figure)


def _data_lines(figure):
    """The drawn lines and markers of every panel, in display pixels."""
    for axes in figure.axes:
        for line in axes.get_lines():
            xy = line.get_xydata()
            if len(xy):
                yield line, line.get_transform().transform(xy)


@pytest.mark.parametrize("dpi", DPIS)
def test_every_legend_lies_outside_the_axes_and_inside_the_figure(drawn, dpi):
    assert set(drawn) == {plots.MEMORY_PNG, plots.THROUGHPUT_PNG, plots.PARETO_PNG, plots.LADDER_PNG}
    for name, figure in drawn.items():
        renderer = _rendered(figure, dpi)
        legends = figure.legends + [axes.get_legend() for axes in figure.axes if axes.get_legend()]
        assert len(legends) == 1, name
        box = legends[0].get_window_extent(renderer)
        assert _inside(box, figure.bbox), f"{name}: legend cut off"
        for axes in figure.axes:
            assert not _overlap(box, axes.get_window_extent(renderer)), f"{name}: legend over a panel"
        for line, pixels in _data_lines(figure):
            assert not any(box.contains(x, y) for x, y in pixels), f"{name}: legend over {line.get_label()}"


def _dashes(line) -> tuple | None:
    """The on-off lengths in points a line is drawn with (None: solid); a
    line style's name hides them ("--" for any custom pattern)."""
    _, dashes = line._dash_pattern  # scaled by the line width
    return None if dashes is None else tuple(dashes)


@pytest.mark.parametrize("name", [plots.MEMORY_PNG, plots.THROUGHPUT_PNG])
def test_each_mode_has_its_own_line_style_and_marker_and_each_backbone_its_colour(drawn, name):
    import matplotlib.colors

    figure = drawn[name]
    styles, colours = {}, {}
    for axes in figure.axes:
        lines = axes.get_lines()
        assert len(lines) == len(FIGURES) * len(MODES)
        for line in lines:
            backbone, mode = line.get_label().split(" ")
            styles.setdefault(mode, set()).add((_dashes(line), line.get_marker()))
            colours.setdefault(backbone, set()).add(matplotlib.colors.to_hex(line.get_color()))
    assert set(styles) == set(MODES) and all(len(s) == 1 for s in styles.values())  # one look per mode
    looks = [next(iter(s)) for s in styles.values()]
    assert len({linestyle for linestyle, _ in looks}) == len(MODES)
    assert len({marker for _, marker in looks}) == len(MODES)
    assert all(len(c) == 1 for c in colours.values()) and len(set().union(*colours.values())) == len(FIGURES)

    # The legend shows the same looks, each sample long enough for two periods of its dash pattern.
    (legend,) = figure.legends
    samples = {text.get_text(): handle for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    sample_points = legend.handlelength * legend.prop.get_size_in_points()
    for mode, ((linestyle, marker),) in styles.items():
        sample = samples[mode]
        assert (_dashes(sample), sample.get_marker()) == (linestyle, marker)
        assert sample_points >= 2 * sum(_dashes(sample) or ()), f"{mode}: a sample too short for its dashes"
    assert set(FIGURES) <= set(samples)


def test_the_written_pngs_are_a_readable_size(tmp_path):
    from PIL import Image

    written = reporting.write_plots(run_records(), tmp_path)
    assert set(written) == {plots.MEMORY_PNG, plots.THROUGHPUT_PNG, plots.PARETO_PNG, plots.LADDER_PNG}
    for name, path in written.items():
        with Image.open(path) as image:
            width, height = image.size
            assert 900 <= width <= 2000 and 400 <= height <= 1000, (name, image.size)
            # Not blank: the plot's colours, not just the white of the figure.
            assert len(image.convert("RGB").getcolors(maxcolors=2**16) or range(2**16)) > 50, name


def test_a_run_whose_accuracy_cannot_rank_still_plots_its_points_without_a_front():
    import matplotlib.pyplot as plt

    from tlbench.reports.configs import configurations
    from tlbench.reports.decide import pareto_front, with_all_figures as measured

    records = [{**r, "weights": "standin:random-init"} for r in run_records()]  # random weights: no front
    assert measured(configurations(records)) and not pareto_front(measured(configurations(records)))
    figure = reporting.figures(records)[plots.PARETO_PNG]
    try:
        (legend,) = figure.legends
        assert "Pareto front" not in [text.get_text() for text in legend.get_texts()]
        assert len(figure.axes[0].texts) == len(FIGURES) * len(MODES) * 2  # every point labelled still
    finally:
        plt.close(figure)
