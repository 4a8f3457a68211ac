"""`python -m tlbench screen`: every backbone `list` knows (or those named),
one features pass each on the dataset, ranked before anything trains.

Each backbone runs as a Ray task in a fresh worker, as a trial does
(worker/screen.py): its weights prepared as a run prepares them, the
dataset split as a run splits it, its features of the train and validation
images computed once. From them: a ridge probe's validation accuracy (the
ranking), LogME (ties), the pass's images/s and its peak memory. The screen
ends with the `run` command for the two best, whose full grid then says
whether training beyond the probe pays.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Console
from rich.table import Table

from tlbench import data
from tlbench.driver import cluster, runner
from tlbench.driver.request import RunRequest
from tlbench.formats import format_bytes
from tlbench.plan import BUDGETS, TrialSpec
from tlbench.registry import BACKBONES, has_mode
from tlbench.reports.rules import ended_ok

SCREEN = "tlbench.worker.screen:screen_backbone"
BATCH = 32  # worker/screen.py's batch: the spec's batch size
EXIT_NONE_SCREENED = 1


def screen(request: RunRequest, settings: runner.Settings, console: Console, work=SCREEN, prepare=None) -> int:
    """Screen the request's backbones (all known when it names none); exit 1 when none could be."""
    request = replace(request, backbones=request.backbones or tuple(b.name for b in BACKBONES))
    images = data.open_dataset(request.dataset)
    workers = runner.Workers(**({"prepare": prepare} if prepare else {}))
    prepared = runner.prepare(request.backbones, request, console, workers)
    rows: list[dict] = []
    with runner.ray_session(settings, console) as info:
        plan = request.resolve(info.gpus, runner.sources(prepared["sources"]), prepared["forward_flops"])
        runner.say_standins(plan.sources, console)
        budget = BUDGETS[plan.budget]
        specs = [TrialSpec(b, "transfer", BATCH, plan.dataset, 0, budget, plan.sources[b]) for b in plan.backbones]
        console.print(f"screening {len(specs)} backbone(s) on {plan.dataset}, one features pass each ...")
        cluster.run_trials(specs, images, info, rows.append, max_retries=settings.max_retries, work=work)
    ranked = rank(rows)
    console.print(screen_table(ranked))
    for row in ranked:
        if not ended_ok(row):
            console.print(f"{row['backbone']}: {row.get('error') or 'failed'}", markup=False, highlight=False)
    best = [row["backbone"] for row in ranked if ended_ok(row)][:2]
    if not best:
        return EXIT_NONE_SCREENED
    console.print("next: " + run_command(best, request), markup=False, highlight=False, soft_wrap=True)
    return 0


def rank(rows: list[dict]) -> list[dict]:
    """Best first: the ridge probe's validation accuracy, then LogME; then
    the backbones that failed, by name."""
    ok = [row for row in rows if ended_ok(row)]
    failed = sorted((row for row in rows if not ended_ok(row)), key=lambda row: row["backbone"])
    return sorted(ok, key=lambda row: (-row["ridge_val_accuracy"], -row["logme"], row["backbone"])) + failed


def screen_table(ranked: list[dict]) -> Table:
    table = Table(title="Backbones screened: one features pass each, nothing trained")
    for header in ("#", "backbone", "probe\nval acc", "LogME", "infer\nimg/s", "peak\nmemory", "weights"):
        left = header in ("backbone", "weights")
        table.add_column(header, justify="left" if left else "right", no_wrap=header != "weights")
    for place, row in enumerate(ranked, start=1):
        if not ended_ok(row):
            table.add_row("-", row["backbone"], "failed", "-", "-", "-", _kind(row.get("weights")))
            continue
        table.add_row(
            str(place),
            row["backbone"],
            f"{row['ridge_val_accuracy']:.3f}",
            f"{row['logme']:.3f}",
            f"{row['infer_images_per_sec']:.1f}",
            format_bytes(row["peak_memory_bytes"]),
            _kind(row["weights"]),
        )
    return table


def _kind(weights: str | None) -> str:
    """tfhub / local / standin: a record's `weights` without its location (the run's records keep it)."""
    return (weights or "-").split(":", 1)[0]


def run_command(backbones: list[str], request: RunRequest) -> str:
    """The `run` command for `backbones`, with the screen's dataset, weights and modules."""
    modes = [mode for mode in ("transfer", "last_block", "finetune") if all(has_mode(b, mode) for b in backbones)]
    parts = ["python -m tlbench run --backbone", *backbones, "--mode", *modes]
    if request.dataset != data.EMBEDDED:
        parts.append(f"--dataset {request.dataset}")
    if request.weights != "auto":
        parts.append(f"--weights {request.weights}")
    parts += [f"--module {name}={where}" for name, where in request.modules.items() if name in backbones]
    return " ".join(parts)

