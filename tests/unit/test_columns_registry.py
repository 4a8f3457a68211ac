"""The registry of a trial's figures (`figures.FIGURES`) is the one list:
the trials table, trials.csv, TensorBoard's HParams and the live line are
made from it, and results/README.md documents what trials.csv holds."""

from __future__ import annotations

import csv
import io
import re
import struct
from pathlib import Path

from tlbench import figures, record
from tlbench.driver.runner import progress_line
from tlbench.reports import columns, export
from tlbench.formats import format_bytes
from tlbench.results import RunContents

README = Path(__file__).resolve().parents[2] / "results" / "README.md"
TRIAL = {
    "trial_id": "resnet_v2_50-transfer-bs16-digits-seed0",
    "backbone": "resnet_v2_50",
    "mode": "transfer",
    "batch_size": 16,
    "dataset": "digits",
    "seed": 0,
    "weights": "tfhub:https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5",
    "status": "ok",
    "started_at": "2026-11-28T21:53:00.000+00:00",
    "finished_at": "2026-11-28T21:54:01.500+00:00",
    "seconds": 61.5,
    "test_accuracy": 0.8125,
    "train_images_per_sec": 7.25,
    "peak_rss_bytes": 5 * 2**30,
}


def _fields(output: str) -> list[str]:
    return [figure.field for figure in figures.shown_in(output)]


def test_every_figure_is_a_record_field_or_derived_from_the_record():
    fields = [figure.field for figure in figures.FIGURES]
    assert len(set(fields)) == len(fields)
    for figure in figures.FIGURES:
        assert figure.field in record.FIELDS or figure.value is not None, figure.field
        for output, other in (figure.after or {}).items():
            assert getattr(figure, output) and other in _fields(output), (figure.field, output, other)


def test_readme_documents_every_trials_csv_column_and_hparams_figure():
    text = README.read_text()
    section = re.search(r"\n## trials\.csv.*?(?=\n## )", text, re.S).group(0)
    named = set(re.findall(r"`([a-z0-9_]+)`", section))
    derived = [f.field for f in figures.FIGURES if f.field not in record.FIELDS]
    for field in (*_fields("csv"), *derived, *_fields("hparam"), *_fields("metric")):
        assert field in named, f"results/README.md's trials.csv section does not name {field}"


def test_the_memory_figures_are_in_trials_csv_and_hparams_not_in_the_table():
    for field in ("peak_rss_bytes", "runtime_overhead_bytes"):
        assert field in export.CSV_FIELDS and field in dict(export.METRICS)
        assert field not in {c.key for c in columns.COLUMNS}


def test_the_public_lists_are_the_registrys():
    assert export.CSV_FIELDS == tuple(_fields("csv"))
    assert export.HPARAMS == tuple((f.field, f.hparam, f.number) for f in figures.shown_in("hparam"))
    assert export.METRICS == tuple((f.field, f.metric) for f in figures.shown_in("metric"))
    assert [c.header for c in columns.COLUMNS] == [f.column.header for f in figures.shown_in("column") if not f.varies]
    header = next(csv.reader(io.StringIO(export.trials_csv([TRIAL]))))
    assert header == list(export.CSV_FIELDS)


def _events(folder: Path):
    """(experiment, {session's hparams}, {scalar tag: value}) of the event
    files under `folder`, read with TensorBoard's protos (no TensorFlow)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    experiment, hparams, scalars = None, {}, {}
    for path in sorted(folder.rglob("*tfevents*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "hparams":
                    scalars[value.tag] = tensor_util.make_ndarray(value.tensor).item()
                    continue
                plugin = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if plugin.HasField("experiment"):
                    experiment = plugin.experiment
                elif plugin.HasField("session_start_info"):
                    hparams = dict(plugin.session_start_info.hparams)
    return experiment, hparams, scalars


def test_a_new_entry_shows_in_every_output_it_names(monkeypatch, tmp_path):
    new = (
        figures.Figure(
            "extra_bytes",
            figures.Column("extra", format=format_bytes),
            metric="extra bytes",
            live="extra {:.0f} B",
            after={"column": "test_accuracy"},
        ),
        figures.Figure("extra_choice", hparam="extra choice", after={"hparam": "backbone"}),
    )
    monkeypatch.setattr(figures, "FIGURES", (*figures.FIGURES, *new))
    trial = {**TRIAL, "extra_bytes": 2048, "extra_choice": "abc"}

    header, row = csv.reader(io.StringIO(export.trials_csv([trial])))
    assert header[-2:] == ["extra_bytes", "extra_choice"] and row[-2:] == ["2048", "abc"]

    table = columns.trial_columns([trial])
    headers = [c.header for c in table]
    assert headers[headers.index("test acc") + 1] == "extra"
    assert "| test acc | extra | train img/s |" in columns.markdown_table([trial], table)
    assert '<td class="num">2.0 KiB</td>' in columns.html_table([trial], table)

    assert "  extra 2048 B  (62 s)" in progress_line(trial, 1, 1)

    run = RunContents(run_dir=tmp_path / "run", records=[trial])
    export.write_tensorboard(run, tmp_path / "tensorboard")
    experiment, hparams, scalars = _events(tmp_path / "tensorboard")
    metrics = [(m.name.tag, m.display_name) for m in experiment.metric_infos]
    assert metrics[-1] == ("extra_bytes", "extra bytes") and scalars["extra_bytes"] == 2048
    names = [(h.name, h.display_name) for h in experiment.hparam_infos]
    assert names[names.index(("backbone", "backbone")) + 1] == ("extra_choice", "extra choice")
    assert hparams["extra_choice"].string_value == "abc"
