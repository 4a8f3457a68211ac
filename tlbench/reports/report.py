"""The report of a run folder, from saved files only: report.md and a
self-contained report.html (plots embedded). `terminal` prints its tables.

The report is built once as a list of sections (paragraphs, bullet lists,
tables, images), then rendered to Markdown or to HTML; every table comes from
a column list in `columns.py`, the same one the terminal uses.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from tlbench import stability
from tlbench.files import replaced_together, write_text_atomic
from tlbench.registry import MODES
from tlbench.reports.analysis import MEMORY_FIT_NOTE, NOISE_RULE, configurations, memory_slopes
from tlbench.reports.columns import (
    COLUMNS,
    MARKS_LEGEND,
    MEMORY_COLUMNS,
    SPREAD_COLUMNS,
    format_bytes,
    html_table,
    markdown_table,
    sort_key,
)
from tlbench.reports.decide import recommend
from tlbench.reports.ladder import LADDER_COLUMNS, LADDER_NOISE_RULE, ladders, mode_order, table_rows
from tlbench.reports.ladder_verdict import summary, verdict
from tlbench.reports.plots import LADDER_PNG
from tlbench.results import REPORT_HTML, REPORT_MD, RunContents


@dataclass(frozen=True)
class Table:
    rows: list
    columns: tuple
    ordered: bool = False  # keep the rows' order (else trial records sort by columns.sort_key)


@dataclass(frozen=True)
class Image:
    file: str  # beside the report
    alt: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # str (a paragraph), list[str] (bullets), Table, Image


def build(run: RunContents, plots: dict | None = None) -> list[Section]:
    env, records = run.env, stability.judged(run.records)  # cross-trial stability too
    sections = [_environment(env)]
    sections += _recommendation(records)
    sections += _ladder(records, plots or {})
    trials = Section("Trials", [Table(records, COLUMNS), _COLUMN_NOTES])
    standins = sorted({r["backbone"] for r in records if str(r.get("weights", "")).startswith("standin")})
    if standins:
        trials.blocks.append(
            f"**Stand-in weights** for {', '.join(standins)}: their accuracies come from randomly "
            "initialised networks of the same architecture, not from pretrained weights. They say "
            "nothing about which backbone transfers better; their speed and memory figures hold."
        )
    sections.append(trials)
    sections += _stability(records, env)
    sections += _accuracy(records)
    sections += _protocol(env, records)
    if plots:
        sections.append(
            Section(
                "Plots",
                [
                    Image(name, alt)
                    for name, alt in (
                        ("memory.png", "Peak memory and step memory against batch size, per backbone and mode"),
                        ("throughput.png", "Training and inference images/s against batch size"),
                        ("accuracy_vs_throughput.png", "Test accuracy against training images/s, Pareto front"),
                    )
                    if name in plots
                ],
            )
        )
    sections += _memory(records)
    failed = [r for r in sorted(records, key=sort_key) if r.get("status") != "ok"]
    if failed:
        sections.append(
            Section(
                "Trials that did not finish",
                [[f"`{r['trial_id']}`: {r['status']}: {r.get('error') or 'no message'}" for r in failed]],
            )
        )
    if run.warnings:
        sections.append(Section("Warnings while reading this run", [list(run.warnings)]))
    return sections


_COLUMN_NOTES = (
    "Accuracies are fractions; `val acc` chose the hyperparameters, `test acc` was measured once "
    "afterwards. Throughputs are the median images/s over timed windows after warm-up, "
    "[interquartile range] when there were several windows. `train MFU`: achieved training FLOP/s "
    "(FLOPs counted from the graph) over the device's peak from a matmul probe. `peak mem` is the "
    "peak during the timed training steps, `step mem` what they add to the memory in use before "
    "them, `pred act` the activation bytes the graph says a step keeps (see `memory_method` in "
    "trials.jsonl). `to acc s`: training seconds to the kept weights' validation accuracy. "
    "results/README.md explains every field."
)


def _stability(records, env: dict) -> list[Section]:
    """The unstable figures with their reasons and what to do; the smoke ones."""
    lines, smoke = stability.unstable_lines(records), stability.smoke_trials(records)
    if not lines and not smoke:
        return []
    blocks = [MARKS_LEGEND]
    if lines:
        command = env.get("command")
        again = f" (`{command}`)" if isinstance(command, str) else ""
        blocks += [f"**Unstable figures**: {stability.ADVICE}{again}.", lines]
    if smoke:
        blocks.append(f"**Smoke figures** in {len(smoke)} trial(s): {stability.SMOKE_NOTE}.")
    return [Section("Stability of the timed figures", blocks)]


def _dict(value) -> dict:
    """A field of env.json that should be an object; anything else reads as
    empty (a run of another version, a damaged file)."""
    return value if isinstance(value, dict) else {}


def _environment(env: dict) -> Section:
    versions, cpu = _dict(env.get("versions")), _dict(env.get("cpu"))
    gpus = env.get("gpus") if isinstance(env.get("gpus"), list) else []
    return Section(
        "Environment",
        [
            [
                (
                    f"host: {env.get('host', '?')}; CPU: {cpu.get('model', '?')} "
                    f"({cpu.get('logical_cores', '?')} logical cores); GPUs: {', '.join(map(str, gpus)) or 'none'}"
                ),
                "versions: " + (", ".join(f"{n} {v}" for n, v in versions.items() if v) or "?"),
                f"git commit: {_dict(env.get('git')).get('commit') or 'unknown'}"
                + (" with uncommitted changes" if _dict(env.get("git")).get("dirty") is True else ""),
                f"command: `{env.get('command', '?')}`",
                f"budget: {_dict(env.get('budget')).get('name', '?')}",
            ]
        ],
    )


def _recommendation(records) -> list[Section]:
    advice = recommend(records)
    if advice is None:
        return []
    blocks = [advice.headlines(describe), *advice.advice]  # no accuracy ranks from stand-ins or chance (decide.py)
    blocks += [f"**Warning**: {w}" for w in advice.warnings]
    return [Section("Recommendation", blocks)]


def describe(c) -> str:
    accuracy = "-" if c.test_mean is None else f"{c.test_mean:.3f}"
    spread = "" if c.test_std is None else f" ± {c.test_std:.3f}"
    speed = "-" if c.train_images_per_sec is None else f"{c.train_images_per_sec:,.1f}"
    if "train_images_per_sec" in c.unstable:
        speed += " (unstable)"
    elif c.timing_quality == stability.SMOKE:
        speed += " (smoke)"
    memory = "-" if c.peak_memory_bytes is None else format_bytes(c.peak_memory_bytes)
    return (
        f"{c.name}: test accuracy {accuracy}{spread} ({c.n_seeds} seed(s)), "
        f"{speed} training images/s, {memory} peak memory"
    )


def _ladder(records, plots: dict) -> list[Section]:
    """Does fine-tuning pay: each backbone's rungs of trainable depth, what
    each step up buys and costs, the rung to take (ladder.py)."""
    found = ladders(records)
    if not found:
        return []
    compared = [ladder for ladder in found if ladder.comparable]
    blocks = []
    if compared:
        blocks += [
            (
                "The ladder of trainable depth, shallowest first: `transfer` trains a new head on the frozen "
                "backbone; `last_block` and `last_stage` also train the backbone's last block or last stage; "
                "`finetune` trains every backbone variable. Each rung that trains the backbone starts from the "
                "linear probe's head. Each backbone is shown at one batch size, the one with the most rungs "
                "measured (the largest of those). `step mem/img` is what a training step adds to the memory in "
                "use, per image (the largest over seeds), `pred/img` the graph's prediction of it; `kept probe`: "
                "seeds whose fine-tuning never lowered the validation loss below the probe's start, so their "
                "accuracy is the probe's. The rung to take is the shallowest within noise of the most accurate "
                f"on validation accuracy (test accuracy is read once, after every choice): {LADDER_NOISE_RULE}."
            ),
            Table(table_rows(found), LADDER_COLUMNS, ordered=True),
            [verdict(ladder) for ladder in compared],
        ]
        norms = sorted({str(r["batch_norm"]) for r in records if r.get("mode") != "transfer" and r.get("batch_norm")})
        if norms:
            blocks.append(f"The backbone's BatchNorm while it trained: {', '.join(norms)}.")
    line = summary(found)
    if line:
        blocks.append(line)
    if compared and LADDER_PNG in plots:
        blocks.append(Image(LADDER_PNG, "Validation accuracy, step memory per image and training images/s per rung"))
    return [Section("Does fine-tuning pay?", blocks)]


def _accuracy(records) -> list[Section]:
    configs = [c for c in configurations(records) if c.test_mean is not None]
    if not configs:
        return []
    if all(c.n_seeds == 1 for c in configs):
        return [
            Section(
                "Accuracy over seeds",
                [
                    (
                        "One seed per configuration, so the spread of test accuracy is unknown and no difference "
                        "in accuracy can be told from noise; run with `--seeds 3` or more."
                    )
                ],
            )
        ]
    return [
        Section(
            "Accuracy over seeds",
            [
                (
                    "Test accuracy of each configuration over its seeds (mean ± sample standard deviation), best "
                    "mean first. The split is the same for every seed; a seed changes the head's initialisation "
                    f"and the shuffling. Rule: {NOISE_RULE}."
                ),
                Table([c.row for c in configs], SPREAD_COLUMNS, ordered=True),
            ],
        )
    ]


def _protocol(env: dict, records) -> list[Section]:
    protocol = _dict(_dict(env.get("plan") or env.get("request")).get("protocol"))  # "request": tlbench 0.1
    budget = _dict(env.get("budget"))
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return []
    first = ok[0]
    sizes = _dict(first.get("split_sizes"))
    rates = {m: v for m, v in _dict(budget.get("learning_rates")).items() if isinstance(v, list)}
    patience = _dict(budget.get("patience"))
    bullets = [
        f"Split: stratified, {sizes.get('train', '?')} train / {sizes.get('val', '?')} validation / "
        f"{sizes.get('test', '?')} test images, split seed "
        f"{protocol.get('split_seed', first.get('split_seed', '?'))}"
        + (f", training images capped at {protocol['train_size']}" if protocol.get("train_size") else "")
        + "; the test split was read once per trial, after every choice.",
        "Search on validation (Adam): base learning rates "
        + "; ".join(f"{mode} {', '.join(map(str, values))}" for mode, values in rates.items())
        + f", scaled to each batch size as {first.get('learning_rate_rule', '?')}; at most "
        f"{budget.get('transfer_epochs', '?')} (transfer) / {budget.get('finetune_epochs', '?')} (finetune) "
        "epochs, stopping after "
        + " / ".join(f"{epochs} ({mode})" for mode, epochs in patience.items())
        + " epochs without a lower validation loss; the weights of the lowest validation loss are kept.",
        _fine_tuning(protocol, ok),
    ]
    kept = {}  # mode -> (trials that kept the probed start, trials)
    for r in ok:
        if r.get("mode") in MODES and r.get("mode") != "transfer":  # the modes that train the backbone
            k, n = kept.get(r["mode"], (0, 0))
            kept[r["mode"]] = (k + (r.get("kept_epoch") == 0), n + 1)
    parts = [f"{k} of {n} {mode}" for mode, (k, n) in sorted(kept.items(), key=lambda i: mode_order(i[0])) if k]
    if parts:
        bullets.append(
            f"In {', '.join(parts)} trials no fine-tuning epoch lowered the validation loss below the linear "
            "probe's start, so early stopping kept the probed start (`kept_epoch` 0): their accuracy is the "
            "linear probe's, their speed and memory fine-tuning's."
        )
    return [Section("How accuracy was measured", [bullets])]


def _fine_tuning(protocol: dict, ok: list) -> str:
    """How the modes that train the backbone start and treat BatchNorm."""
    momentum = protocol.get("batch_norm_momentum", ok[0].get("batch_norm_momentum", "?"))
    trains = [r for r in ok if r.get("mode") != "transfer"]
    policies = sorted({str(r["batch_norm"]) for r in trains if r.get("batch_norm")})
    if not policies and protocol.get("batch_norm") is None:  # records of earlier versions: BatchNorm trained
        return (
            "Finetune starts from the linear probe's head (LP-FT) with BatchNorm in training mode, "
            f"momentum {momentum}."
        )
    policy = ", ".join(policies) or str(protocol.get("batch_norm"))
    note = f" (momentum {momentum})" if "train" in policies or policy == "train" else ""
    return (
        "Every mode that trains the backbone (last_block, last_stage, finetune) starts from the linear probe's "
        f"head (LP-FT); the backbone's BatchNorm while it trains: {policy}{note}."
    )


def _memory(records) -> list[Section]:
    slopes = memory_slopes(records)
    if not slopes:
        return []
    return [
        Section(
            "Memory against batch size",
            [
                MEMORY_FIT_NOTE,
                Table([s.__dict__ for s in slopes], MEMORY_COLUMNS, ordered=True),
            ],
        )
    ]


def to_markdown(title: str, sections) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                lines += [block, ""]
            elif isinstance(block, list):
                lines += [f"- {item}" for item in block] + [""]
            elif isinstance(block, Table):
                lines += [markdown_table(block.rows, block.columns, ordered=block.ordered)]
            elif isinstance(block, Image):
                lines += [f"![{block.alt}]({block.file})", ""]
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 96em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
th { background: #f0f0f0; } td.num { text-align: right; } tr.failed td { color: #b00; }
code { background: #f4f4f4; padding: 0 0.2em; } img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def to_html(title: str, sections, folder: Path) -> str:
    """One file: styles inline, images embedded as base64 PNG; no network."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, str):
                parts.append(f"<p>{_inline(block)}</p>")
            elif isinstance(block, list):
                parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block) + "</ul>")
            elif isinstance(block, Table):
                parts.append(html_table(block.rows, block.columns, ordered=block.ordered))
            elif isinstance(block, Image):
                data = base64.b64encode((folder / block.file).read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">'
                    f"<figcaption>{html.escape(block.alt)}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """The Markdown the report's paragraphs use: `code` and **bold**."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def render_markdown(run: RunContents) -> str:
    return to_markdown(f"tlbench run {run.run_dir.name}", build(run))


def write_report(run: RunContents) -> dict[str, Path]:
    """report.md, report.html and the plots: all replacing the old ones, or none (`replaced_together`)."""
    from tlbench.reports.export import write_exports
    from tlbench.reports.plots import write_plots

    with replaced_together(run.run_dir) as staging:
        plots, title = write_plots(run.records, staging), f"tlbench run {run.run_dir.name}"
        sections = build(run, plots)
        write_text_atomic(staging / REPORT_MD, to_markdown(title, sections))
        write_text_atomic(staging / REPORT_HTML, to_html(title, sections, staging))
        write_exports(run, staging)  # trials.csv with these; tensorboard/ replaced
    return {name: run.run_dir / name for name in (REPORT_MD, REPORT_HTML, *plots)}
