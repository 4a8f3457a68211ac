"""The report of a run as one document: sections of paragraphs, bullet lists,
notes, tables and images, built once from the `RunAnalysis` and rendered
to Markdown and HTML (report.py) and to the terminal (terminal.py).

The files hold every section; the terminal shows `TERMINAL_ORDER`, its tables
and verdicts, with the run's warnings first and the advice last, where a
reader looks after a run. A block says where it is shown (`shown`): the
files explain what a terminal leaves out, and a few lines are worded for the
terminal alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tlbench import run_env, stability
from tlbench.device_memory import FIT_NOTE, FOUND_NOTE
from tlbench.registry import MODES
from tlbench.reports.analysis import RunAnalysis
from tlbench.reports.columns import (
    DEVICE_COLUMNS,
    MARKS_LEGEND,
    MEMORY_COLUMNS,
    SMOKE_MARK,
    SPREAD_COLUMNS,
    TRIAL_ESSENTIALS,
    TRIAL_KEYS,
    UNSTABLE_MARK,
    sort_key,
    trial_columns,
)
from tlbench.reports.configs import MEMORY_FIT_NOTE
from tlbench.reports.ladder import LADDER_COLUMNS, mode_order, summary, table_rows, verdict
from tlbench.reports.plots import LADDER_PNG, MEMORY_PNG, PARETO_PNG, THROUGHPUT_PNG
from tlbench.reports.rules import RUNGS_NOISE_RULE, SEEDS_NOISE_RULE, ended_ok
from tlbench.reports import timing
from tlbench.run_env import RunEnv

FILE, TERMINAL = "file", "terminal"  # where a block is shown
BOTH, ONLY_FILES, ONLY_TERMINAL = frozenset({FILE, TERMINAL}), frozenset({FILE}), frozenset({TERMINAL})


@dataclass(frozen=True)
class Paragraph:
    text: str  # Markdown: `code` and **bold** (the terminal shows them plain)
    shown: frozenset = BOTH


@dataclass(frozen=True)
class Bullets:
    items: list  # the terminal shows one a line
    shown: frozenset = BOTH


@dataclass(frozen=True)
class Note:
    """A line that calls for attention: `**Warning**: text` in the files, `warning: text` in colour in a terminal."""

    label: str  # "warning:", "unstable:", "!"
    text: str
    shown: frozenset = BOTH


@dataclass(frozen=True)
class Table:
    rows: list
    columns: tuple
    ordered: bool = False  # keep the rows' order (else trial records sort by columns.sort_key)
    title: str | None = None  # in a terminal, where no section heading stands above it
    keys: tuple = ()  # in a terminal: the columns that name a row, repeated in the tables of more columns
    essentials: tuple = ()  # ... and those it shows at any width
    shown: frozenset = BOTH


@dataclass(frozen=True)
class Image:
    file: str  # a plot beside the report
    alt: str
    shown: frozenset = ONLY_FILES


Block = Paragraph | Bullets | Note | Table | Image


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def shown_in(self, where: str) -> list[Block]:
        return [block for block in self.blocks if where in block.shown]


@dataclass
class Document:
    title: str
    sections: list[Section]

    def in_terminal(self) -> list[Section]:
        by_key = {section.key: section for section in self.sections}
        return [by_key[key] for key in TERMINAL_ORDER if key in by_key]


TERMINAL_ORDER = ("warnings", "trials", "stability", "accuracy", "ladder", "decision", "recommendation")

# Each table's columns that name a row, and those a terminal shows at any width.
SPREAD_KEYS = ("backbone", "mode", "batch")
SPREAD_ESSENTIALS = (*SPREAD_KEYS, "seeds", "test acc mean ± std", "vs best")
LADDER_KEYS = ("backbone", "batch", "mode")
LADDER_ESSENTIALS = (*LADDER_KEYS, "val acc mean ± std", "step mem/img MiB", "train img/s")

PLOTS = (
    (MEMORY_PNG, "Peak memory and step memory against batch size, per backbone and mode"),
    (THROUGHPUT_PNG, "Training and inference images/s against batch size"),
    (PARETO_PNG, "Test accuracy against training images/s, Pareto front"),
)


def build(analysis: RunAnalysis, plots=()) -> Document:
    """The document of a run; `plots`: the plot files written beside it."""
    sections = [
        _environment(analysis.run.env),
        _recommendation(analysis),
        _decision(analysis),
        _ladder(analysis, plots),
        _trials(analysis),
        _stability(analysis),
        _accuracy(analysis),
        _protocol(analysis),
        _time_split(analysis),
        Section("plots", "Plots", [Image(name, alt) for name, alt in PLOTS if name in plots]),
        _memory(analysis),
        _device_sizes(analysis),
        _failed(analysis),
        _warnings(analysis),
    ]
    return Document(analysis.run_title, [s for s in sections if s.blocks])


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


def _trials(analysis: RunAnalysis) -> Section:
    records = analysis.records
    columns = trial_columns(records)
    table = Table(records, columns, title=analysis.run_title, keys=TRIAL_KEYS, essentials=TRIAL_ESSENTIALS)
    blocks: list[Block] = [table, Paragraph(_COLUMN_NOTES, ONLY_FILES)]
    standins = sorted({r["backbone"] for r in records if str(r.get("weights", "")).startswith("standin")})
    if standins:
        blocks.append(
            Paragraph(
                f"**Stand-in weights** for {', '.join(standins)}: their accuracies come from randomly "
                "initialised networks of the same architecture, not from pretrained weights. They say "
                "nothing about which backbone transfers better; their speed and memory figures hold.",
                ONLY_FILES,
            )
        )
    return Section("trials", "Trials", blocks)


def _stability(analysis: RunAnalysis) -> Section:
    """The unstable figures with their reasons and what to do; the smoke ones."""
    lines, smoke = analysis.unstable_lines, analysis.smoke_trials
    blocks: list[Block] = [Paragraph(MARKS_LEGEND, ONLY_FILES)] if lines or smoke else []
    if lines:
        command = analysis.run.env.get("command")
        again = f" (`{command}`)" if isinstance(command, str) else ""
        blocks += [
            Paragraph(f"**Unstable figures**: {stability.ADVICE}{again}.", ONLY_FILES),
            Bullets(lines, ONLY_FILES),
            *(Note("unstable:", line, ONLY_TERMINAL) for line in lines),
            Note(UNSTABLE_MARK.strip(), f"unstable: {stability.ADVICE}", ONLY_TERMINAL),
        ]
    if smoke:
        blocks += [
            Paragraph(f"**Smoke figures** in {len(smoke)} trial(s): {stability.SMOKE_NOTE}.", ONLY_FILES),
            Paragraph(f"{SMOKE_MARK.strip()}: {stability.SMOKE_NOTE}", ONLY_TERMINAL),
        ]
    return Section("stability", "Stability of the timed figures", blocks)


def _environment(env: RunEnv) -> Section:
    """What the run ran on and how; env.json's fields are of their declared types (run_env.checked)."""
    cpu, git = env.get("cpu", {}), env.get("git", {})
    lines = [
        f"host: {env.get('host', '?')}; CPU: {cpu.get('model', '?')} "
        f"({cpu.get('logical_cores', '?')} logical cores); GPUs: {', '.join(map(str, env.get('gpus', []))) or 'none'}",
        "versions: " + (", ".join(f"{n} {v}" for n, v in env.get("versions", {}).items() if v) or "?"),
        f"git commit: {git.get('commit') or 'unknown'}" + (" with uncommitted changes" if git.get("dirty") else ""),
        f"command: `{env.get('command', '?')}`",
        f"budget: {env.get('budget', {}).get('name', '?')}",
    ]
    return Section("environment", "Environment", [Bullets(lines, ONLY_FILES)])


def _recommendation(analysis: RunAnalysis) -> Section:
    blocks: list[Block] = []
    if advice := analysis.recommendation:  # no accuracy ranks from stand-ins or chance (decide.py)
        blocks = [Bullets(advice.headlines(), ONLY_FILES), *map(Paragraph, advice.advice)]
        blocks += [Note("warning:", w) for w in advice.warnings]
    return Section("recommendation", "Recommendation", blocks)


def _decision(analysis: RunAnalysis) -> Section:
    """When each backbone's early answer came, and the full answer; whether the early ranking held (timing.py)."""
    blocks: list[Block] = []
    if d := analysis.decision:
        rows = [answer.__dict__ for answer in d.answers]
        blocks = [Table(rows, timing.DECISION_COLUMNS, True, shown=ONLY_FILES), Paragraph(timing.verdict(d))]
    return Section("decision", "How long the decision took", blocks)


def _time_split(analysis: RunAnalysis) -> Section:
    blocks: list[Block] = []
    if split := analysis.time_split:
        intro, largest = timing.split_text(split)
        table = Table(split.rows, timing.SPLIT_COLUMNS, True, shown=ONLY_FILES)
        blocks = [Paragraph(intro, ONLY_FILES), table, Paragraph(largest, ONLY_FILES)]
    return Section("time", "Where the time went", blocks)


_LADDER_INTRO = (
    "The ladder of trainable depth, shallowest first: `transfer` trains a new head on the frozen "
    "backbone; `last_block` and `last_stage` also train the backbone's last block or last stage; "
    "`finetune` trains every backbone variable. Each rung that trains the backbone starts from the "
    "linear probe's head. Each backbone is shown at one batch size, the one with the most rungs "
    "measured (the largest of those). `step mem/img` is what a training step adds to the memory in "
    "use, per image (the largest over seeds), `pred/img` the graph's prediction of it; `kept probe`: "
    "seeds whose fine-tuning never lowered the validation loss below the probe's start, so their "
    "accuracy is the probe's. The rung to take is the shallowest within noise of the most accurate "
    f"on validation accuracy (test accuracy is read once, after every choice): {RUNGS_NOISE_RULE}."
)


def _ladder(analysis: RunAnalysis, plots) -> Section:
    """Does fine-tuning pay: each backbone's rungs of trainable depth, what
    each step up buys and costs, the rung to take (ladder.py)."""
    found, compared, blocks = analysis.ladders, analysis.compared_ladders, list[Block]()
    if compared:
        title, rows = "Does fine-tuning pay?", table_rows(found)
        table = Table(rows, LADDER_COLUMNS, True, title, keys=LADDER_KEYS, essentials=LADDER_ESSENTIALS)
        blocks = [Paragraph(_LADDER_INTRO, ONLY_FILES), table, Bullets([verdict(ladder) for ladder in compared])]
        trained = [r for r in analysis.records if r.get("mode") != "transfer"]
        norms = sorted({str(r["batch_norm"]) for r in trained if r.get("batch_norm")})
        if norms:
            blocks.append(Paragraph(f"The backbone's BatchNorm while it trained: {', '.join(norms)}.", ONLY_FILES))
    if line := summary(found):
        blocks.append(Paragraph(line))
    if compared and LADDER_PNG in plots:
        blocks.append(Image(LADDER_PNG, "Validation accuracy, step memory per image and training images/s per rung"))
    return Section("ladder", "Does fine-tuning pay?", blocks)


_ONE_SEED = (
    "One seed per configuration, so the spread of test accuracy is unknown and no difference "
    "in accuracy can be told from noise; run with `--seeds 3` or more."
)
_OVER_SEEDS = (
    "Test accuracy of each configuration over its seeds (mean ± sample standard deviation), best "
    "mean first. The split is the same for every seed; a seed changes the head's initialisation "
    f"and the shuffling. Rule: {SEEDS_NOISE_RULE}."
)


def _accuracy(analysis: RunAnalysis) -> Section:
    configs, blocks = analysis.with_results, list[Block]()
    if configs and all(c.n_seeds == 1 for c in configs):
        blocks = [Paragraph(_ONE_SEED, ONLY_FILES)]
    elif configs:
        title, rows = "Test accuracy over seeds", [c.row for c in configs]
        table = Table(rows, SPREAD_COLUMNS, True, title, keys=SPREAD_KEYS, essentials=SPREAD_ESSENTIALS)
        blocks = [Paragraph(_OVER_SEEDS, ONLY_FILES), table]
    return Section("accuracy", "Accuracy over seeds", blocks)


def _protocol(analysis: RunAnalysis) -> Section:
    protocol, budget = run_env.protocol(analysis.run.env), analysis.run.env.get("budget", {})
    ok = [r for r in analysis.records if ended_ok(r)]
    if not ok:
        return Section("protocol", "How accuracy was measured")
    first = ok[0]
    sizes = first.get("split_sizes", {})
    bullets = [
        f"Split: stratified, {sizes.get('train', '?')} train / {sizes.get('val', '?')} validation / "
        f"{sizes.get('test', '?')} test images, split seed "
        f"{protocol.get('split_seed', first.get('split_seed', '?'))}"
        + (f", training images capped at {protocol['train_size']}" if protocol.get("train_size") else "")
        + "; the test split was read once per trial, after every choice.",
        _search(budget, first.get("learning_rate_rule", "?")),
        _fine_tuning(protocol, ok),
    ]
    batches = {r["trial_id"]: r.get("batch_size") for r in ok}
    carried = {f"{r['backbone']} {r['mode']} bs{r['batch_size']} (from bs{batches.get(r['learning_rate_carried_from'], '?')})"
               for r in ok if r.get("learning_rate_carried_from")}  # fmt: skip
    if carried:
        bullets.append(
            "Searched where: fine-tuning searched its learning rates at the smallest batch size of each backbone, "
            "mode and seed; larger batches trained the rate chosen there alone, scaled to their batch size by the "
            f"same rule: {', '.join(sorted(carried))}."
        )
    used = [r.get("frozen_inputs") or {} for r in ok]  # what the trials took from work done once per backbone
    taken = [sum(bool(u.get(key)) for u in used) for key in ("shared", "activations_shared", "probe_shared")]
    probe = f"; the linear probe's path, by {taken[2]}, each choosing on it" if any("probe_shared" in u for u in used) else ""
    if taken[0]:
        bullets.append(
            f"Computed once per backbone and shared (`frozen_inputs`): the features, used by {taken[0]} of {len(ok)} "
            f"trials; the boundary activations, by {taken[1]}{probe}."
        )
    trained = [r for r in ok if r.get("mode") in MODES[1:]]  # the modes that train the backbone
    kept, all_ = Counter(r["mode"] for r in trained if r.get("kept_epoch") == 0), Counter(r["mode"] for r in trained)
    parts = [f"{kept[mode]} of {all_[mode]} {mode}" for mode in sorted(kept, key=mode_order)]
    if parts:
        bullets.append(
            f"In {', '.join(parts)} trials no fine-tuning epoch lowered the validation loss below the linear "
            "probe's start, so early stopping kept the probed start (`kept_epoch` 0): their accuracy is the "
            "linear probe's, their speed and memory fine-tuning's."
        )
    return Section("protocol", "How accuracy was measured", [Bullets(bullets, ONLY_FILES)])


def _search(budget: run_env.Budget, rule: str) -> str:
    """The searches on validation: the probe's penalties (runs of earlier versions: its learning rates), fine-tuning's."""
    rates, patience, epochs = (
        budget.get("learning_rates", {}),
        budget.get("patience", {}),
        budget.get("finetune_epochs"),
    )
    adam = "; ".join(f"{mode} {', '.join(map(str, values))}" for mode, values in rates.items())
    adam += f", scaled to each batch size as {rule}; at most "
    stopping = " epochs without a lower validation loss; the weights of the lowest validation loss are kept."
    if "probe_penalties" not in budget:
        stops = " / ".join(f"{epochs} ({mode})" for mode, epochs in patience.items())
        most = f"{budget.get('transfer_epochs', '?')} (transfer) / {epochs} (finetune)"
        return f"Search on validation (Adam): base learning rates {adam}{most} epochs, stopping after {stops}{stopping}"
    return (
        "Linear probe: logistic regression on the cached features (the head's model and loss) by L-BFGS at L2 "
        f"penalties {', '.join(f'{p:g}' for p in budget['probe_penalties'])}, the one chosen on validation: the "
        f"same for every seed and batch size. Fine-tuning from the probe's head (Adam): base learning rates {adam}"
        f"{epochs} epochs per rate, the best half (rounded down) going on after the first (successive halving), stopping after "
        f"{patience.get('finetune', '?')}{stopping}"
    )


def _fine_tuning(protocol: run_env.Protocol, ok: list) -> str:
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


def _memory(analysis: RunAnalysis) -> Section:
    rows = [fit.__dict__ for fit in analysis.memory_fits]
    table = Table(rows, MEMORY_COLUMNS, ordered=True, shown=ONLY_FILES)
    blocks: list[Block] = [Paragraph(MEMORY_FIT_NOTE, ONLY_FILES), table] if rows else []
    return Section("memory", "Memory against batch size", blocks)


def _device_sizes(analysis: RunAnalysis) -> Section:
    rows = [fit.row() for fit in analysis.device_fits]
    table: list[Block] = [Paragraph(FIT_NOTE, ONLY_FILES), Table(rows, DEVICE_COLUMNS, True, shown=ONLY_FILES)]
    found: list[Block] = [Paragraph(FOUND_NOTE, ONLY_FILES), Bullets(analysis.found_batches, ONLY_FILES)]
    blocks = (table if rows else []) + (found if analysis.found_batches else [])
    return Section("devices", "The largest batch that fits a device", blocks)


def _failed(analysis: RunAnalysis) -> Section:
    failed = [r for r in sorted(analysis.records, key=sort_key) if not ended_ok(r)]
    lines = [f"`{r['trial_id']}`: {r['status']}: {r.get('error') or 'no message'}" for r in failed]
    return Section("failed", "Trials that did not finish", [Bullets(lines, ONLY_FILES)] if lines else [])


def _warnings(analysis: RunAnalysis) -> Section:
    warnings = list(analysis.run.warnings)
    blocks: list[Block] = [Bullets(warnings, ONLY_FILES), *(Note("warning:", w, ONLY_TERMINAL) for w in warnings)]
    return Section("warnings", "Warnings while reading this run", blocks if warnings else [])
