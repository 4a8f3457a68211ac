"""A run, from request to report, in the driver process.

`start` turns a RunRequest into a run: check the dataset, join or start Ray,
prepare every backbone's weights once (outside this process), resolve the
plan, create the run folder and write env.json, then run the grid. `resume`
reads a run folder's plan back and runs the trials it has no finished record
of. Both hold the run folder's lock while they write to it, append each
record the moment its trial ends, show the live view, and write the report.

What runs outside the driver comes in as `Workers`: this module never imports
TensorFlow or backbone code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from tlbench import data, environment, isolated, record, results, run_env
from tlbench.driver import cluster, estimate, stopping
from tlbench.driver.carry import RateCarrier
from tlbench.driver.progress import GridProgress, early_answer
from tlbench.driver.request import RunPlan, RunRequest, recorded_plan
from tlbench.errors import ResultsUnwritable, os_reason
from tlbench.figures import live_figures
from tlbench.files import write_json_atomic
from tlbench.plan import BUDGETS, longest_first, predicted_flops
from tlbench.registry import trains_backbone

EXIT_OK = 0
EXIT_TRIAL_ERRORS = 1
EXIT_INTERRUPTED = 130


def prepare_in_fresh_process(backbones, policy: str, modules: dict, batch_norm_momentum: float) -> dict:
    """Weights sources and FLOP counts, decided by the worker side in a fresh
    process (it imports TensorFlow; this process never does)."""
    return isolated.call(
        "tlbench.worker.entry:prepare_backbones", list(backbones), policy, modules, batch_norm_momentum
    )


@dataclass(frozen=True)
class Workers:
    """What runs outside the driver, passed in."""

    trial: str | Callable = cluster.TRIAL  # in a Ray worker: (spec, images) -> record
    # in a Ray worker, once per backbone: (spec, images, modes) -> its frozen inputs, which the
    # trials then get as a third argument; None: each trial computes its own
    frozen: str | Callable | None = cluster.FROZEN
    # (backbones, weights policy, --module overrides, momentum) ->
    # {"sources": {name: ModuleSource fields}, "forward_flops": {name: int}}
    prepare: Callable = prepare_in_fresh_process
    # --batch-size max, in a Ray worker: (spec, images) -> the largest batch predicted / a FitProbe (max_batch.py)
    predict: str | Callable = "tlbench.worker.fit_probe:predict"
    probe: str | Callable = "tlbench.worker.fit_probe:probe"


@dataclass(frozen=True)
class Settings:
    """How this invocation runs the grid; not part of what the run records."""

    out: str = "results"  # parent folder of new run folders
    address: str | None = None  # a Ray cluster to join
    concurrency: int | None = None  # trials at once per CPU-only node
    max_retries: int = 1  # reruns of a trial whose worker died
    argv: list = field(default_factory=list)  # the command line, for env.json
    on_run_dir: Callable | None = None  # told the run folder once known (the Python API returns it)
    wide: bool = False  # the tables with every column, however wide (--wide)


def start(request: RunRequest, settings: Settings, console: Console, workers: Workers = Workers()) -> int:
    """A new run; its exit status."""
    started_at = record.utc_now()  # env.json's: the run's time counts from here (reports/timing.py)
    images = data.open_dataset(request.dataset)
    data.check_train_size(images, request.protocol.train_size)
    _say_plainly(images.skipped_summary(), console)
    parent = results.prepare_parent(settings.out)
    with _interruptible(console) as state:
        state.started_at = started_at
        # Backbones named on the command line are prepared before Ray starts:
        # a module that can't serve is one line without a cluster's start-up.
        prepared = prepare(request.backbones, request, console, workers) if request.backbones else None
        with ray_session(settings, console) as info:
            if prepared is None:  # the default grid's backbones depend on the cluster's GPUs
                prepared = prepare(request.backbones_on(info.gpus), request, console, workers)
            return _start_on(request, prepared, images, parent, info, settings, console, workers, state)
    return state.stopped_status


def prepare(backbones, request: RunRequest, console: Console, workers: Workers) -> dict:
    console.print(f"[dim]choosing weights for {', '.join(backbones)} ...[/]")
    return workers.prepare(backbones, request.weights, request.modules, request.protocol.batch_norm_momentum)


def _start_on(request: RunRequest, prepared: dict, images, parent, info, settings, console, workers, state) -> int:
    """A new run on the cluster `info`, its weights prepared: the plan, the
    run folder and env.json, then the grid."""
    plan = request.resolve(info.gpus, sources(prepared["sources"]), prepared["forward_flops"])
    say_standins(plan.sources, console)
    _say_plainly(xla_warning(plan.xla, plan.modes), console)
    starved = data.budget_warning(images, plan.protocol, BUDGETS[plan.budget])
    _say_plainly(starved and f"warning: {starved}", console)
    run_dir = state.run_dir = results.new_run_dir(parent, info.device_tag)
    if settings.on_run_dir:
        settings.on_run_dir(run_dir)
    with results.lock(run_dir):
        env = run_env.make(
            **environment.machine_fields(settings.argv, info.env_fields()),
            **{run_env.ENV_KEY: plan.as_json()},
            started_at=state.started_at,
            budget=asdict(BUDGETS[plan.budget]),
            dataset={
                "name": plan.dataset,
                "images": len(images.labels),
                "classes": images.num_classes,
                "skipped_files": images.skipped_files,
                "skipped": images.skipped,  # {reason: files}
                "skipped_examples": images.skipped_examples,
                "budget_warning": starved,
            },
        )
        _write_env(run_dir, env)
        return _run(run_dir, plan, images, info, frozenset(), settings, console, workers, state)


def resume(run_dir: Path, settings: Settings, console: Console, workers: Workers = Workers()) -> int:
    """Run the trials of `run_dir`'s recorded grid that have no finished
    record; its exit status."""
    results.read_run(run_dir)  # a run folder, or a UsageError
    with _interruptible(console) as state, results.lock(run_dir):
        state.run_dir = run_dir
        if settings.on_run_dir:
            settings.on_run_dir(run_dir)
        plan, done = recorded_plan(run_dir)  # read now that no one else writes to it
        say_standins(plan.sources, console)
        _say_plainly(xla_warning(plan.xla, plan.modes), console)
        images = data.open_dataset(plan.dataset)
        data.check_train_size(images, plan.protocol.train_size)
        _say_plainly(images.skipped_summary(), console)
        with ray_session(settings, console) as info:
            return _run(run_dir, plan, images, info, done, settings, console, workers, state)
    return state.stopped_status


@dataclass
class _State:
    run_dir: Path | None = None
    finished: int = 0  # records appended by this invocation
    started_at: str | None = None  # a new run's start, for env.json
    stopped_status: int = EXIT_INTERRUPTED  # the exit status of an interrupted run


@contextlib.contextmanager
def _interruptible(console: Console):
    """Ctrl-C or SIGTERM anywhere in a run: say what was kept and how to go on."""
    state = _State()
    stops = stopping.Stops()
    try:
        with stopping.stop_signals() as stops:
            yield state
    except KeyboardInterrupt:
        state.stopped_status = stops.exit_status  # 130 for Ctrl-C, 143 for SIGTERM
        console.print(f"[yellow]interrupted:[/] {state.finished} finished trial(s) kept")
        if state.run_dir is not None:
            console.print(f"resume with: python -m tlbench run --resume {state.run_dir}")


@contextlib.contextmanager
def ray_session(settings: Settings, console: Console):
    console.print("[dim]starting Ray ...[/]")
    info = None
    try:
        info = cluster.connect(settings.address, settings.concurrency)
        yield info
    finally:
        cluster.release(info)


def say_standins(sources: dict, console: Console) -> None:
    """Before any trial: which backbones run on random stand-in weights, why,
    what that means for the figures and how to get pretrained ones. Said at
    the start because a grid takes minutes to hours."""
    standins = {name: source for name, source in sources.items() if source.kind == "standin"}
    if not standins:
        return
    # The note ends "; stand-in with random initial weights": said here once.
    reasons = sorted({(source.note or "").split("; stand-in")[0] for source in standins.values()} - {""})
    console.print(
        f"[yellow]stand-in weights (random initialisation) for {escape(', '.join(standins))}[/]"
        + (f": {escape('; '.join(reasons))}" if reasons else "")
    )
    console.print(
        "Their speed and memory figures hold; their accuracies say nothing about which backbone "
        "transfers better. For pretrained weights: 'python -m tlbench prefetch' where TF Hub is reachable "
        "and TFHUB_CACHE_DIR pointing at that cache, or --module NAME=PATH; --weights hub fails instead "
        "of falling back."
    )


def xla_warning(xla: bool, modes) -> str | None:
    """--xla where a training step differentiates through the module: XLA
    can't see shapes through the gradient of a restored SavedModel function,
    takes the backbone's weights for compile-time constants, and compiles
    such a step anew every time its weights change (measured: MobileNet V2
    0.35/128 at batch 8, last_block and finetune 9-20 s a step on 2 CPU
    cores, against 0.1 s for transfer, which compiles once)."""
    trained = [mode for mode in modes if trains_backbone(mode)]
    if not (xla and trained):
        return None
    return (
        f"warning: --xla with {', '.join(trained)}: XLA compiles each training step of a mode that trains the "
        "backbone anew (a restored module's gradient hides its shapes), so their training figures time the "
        "compiler; transfer compiles once"
    )


def _say_plainly(line: str | None, console: Console) -> None:
    """A warning as one yellow line, as written (file names may hold "[...]")."""
    if line:
        console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)


def _write_env(run_dir: Path, env: run_env.RunEnv) -> None:
    try:
        write_json_atomic(run_dir / results.ENV, env)
    except OSError as error:
        raise ResultsUnwritable(f"can't write {run_dir / results.ENV} ({os_reason(error)})") from None


def sources(prepared: dict) -> dict:
    from tlbench.plan import ModuleSource

    return {name: ModuleSource(**fields) for name, fields in prepared.items()}


def _run(run_dir, plan: RunPlan, images, info, done, settings, console, workers, state) -> int:
    if plan.batch_size_searches is not None:  # --batch-size max: each pair's batch size first
        plan = _search_batch_sizes(run_dir, plan, images, info, console, workers)
    grid = plan.grid()
    budget = BUDGETS[plan.budget]
    sizes = data.capped_splits(
        images, plan.protocol.split_seed, plan.protocol.max_train_images(budget), budget.max_eval_images
    ).sizes()
    specs = longest_first(
        [spec for spec in grid if spec.trial_id not in done],
        lambda spec: predicted_flops(spec, plan.forward_flops[spec.backbone], sizes),
    )
    console.print(
        f"run {run_dir}: {len(specs)} of {len(grid)} trials to run, budget '{plan.budget}', "
        f"{info.nodes} node(s), {info.gpus} GPU(s), {info.cpus} CPU(s)"
    )
    # Fine-tuning's rates are searched at each group's smallest batch size and carried to the others.
    carrier = RateCarrier(specs, results.read_run(run_dir).records if done else ())
    predicted = {s.trial_id: predicted_flops(s, plan.forward_flops[s.backbone], sizes, carrier.searched_rates(s))
                 for s in specs}  # fmt: skip
    progress = GridProgress(total=len(specs), parallel=info.parallel_trials, predicted=predicted)
    with Live(progress.render(), console=console, refresh_per_second=2, transient=True) as live:

        def on_record(trial: dict) -> None:
            with stopping.interrupts_held():  # a record written is a record counted
                try:
                    results.append_record(run_dir, trial)  # first: nothing finished is ever lost
                except OSError as error:
                    raise ResultsUnwritable(
                        f"can't write the record of {trial.get('trial_id')} to {run_dir / results.TRIALS} "
                        f"({os_reason(error)}); the run stops. The {state.finished} record(s) written before "
                        f"are intact; make room and continue with: python -m tlbench run --resume {run_dir}"
                    ) from None
                state.finished += 1
            progress.finished(trial)
            live.console.print(progress_line(trial, state.finished, len(specs)))
            live.update(progress.render())

        def on_running(running: dict) -> None:
            progress.running = running
            live.update(progress.render())

        def on_frozen(spec, summary: dict) -> None:
            trials = [s for s in specs if s.frozen_key() == spec.frozen_key()]
            speed = estimate.Speed.of(summary)
            if speed is not None:  # each trial now counts by its prediction in the live view's estimate
                progress.seconds.update(
                    {s.trial_id: estimate.trial_seconds(s, sizes, speed, carrier.searched_rates(s)) for s in trials}
                )
            seconds = speed and sum(progress.seconds[s.trial_id] for s in trials)
            live.console.print(early_answer(spec.backbone, summary, len(trials), seconds))
            live.update(progress.render())

        cluster.run_trials(
            specs,
            images,
            info,
            on_record,
            max_retries=settings.max_retries,
            on_running=on_running,
            work=workers.trial,
            frozen_work=workers.frozen,
            on_frozen=on_frozen,
            carrier=carrier,
        )
    if progress.frozen_line():
        console.print(progress.frozen_line())
    return _report(run_dir, console, settings.wide or not console.is_terminal)  # a file or a pipe: every column


def _search_batch_sizes(run_dir: Path, plan: RunPlan, images, info, console: Console, workers: Workers) -> RunPlan:
    """The plan with a search for each of its pairs, each kept in env.json the
    moment it ends (max_batch.py)."""
    from tlbench.driver import max_batch

    searches = dict(plan.batch_size_searches or {})

    def keep(key: str, search: dict) -> None:
        searches[key] = search
        env = dict(results.read_run(run_dir).env)  # as written at the start, and by the searches before
        env[run_env.ENV_KEY] = replace(plan, batch_size_searches=dict(searches)).as_json()
        with stopping.interrupts_held():  # a search written is a search kept
            _write_env(run_dir, env)

    max_batch.search(plan, images, info, keep, console, (workers.predict, workers.probe))
    return replace(plan, batch_size_searches=searches)


def _report(run_dir: Path, console: Console, wide: bool = False) -> int:
    from tlbench.reports.analysis import analyse
    from tlbench.reports.report import write_report
    from tlbench.reports.terminal import print_report

    analysis = analyse(results.read_run(run_dir))
    try:
        write_report(analysis)
    except ResultsUnwritable as error:  # the records are safe; only the report's files are missing
        print_report(analysis, console, wide)
        raise ResultsUnwritable(
            f"{error}; the tables are above and every record is in {run_dir / results.TRIALS}; "
            f"once the folder can be written, run: python -m tlbench report {run_dir}"
        ) from None
    print_report(analysis, console, wide)
    console.print(f"records: {run_dir / results.TRIALS}\nreport:  {run_dir / results.REPORT_MD}, {results.REPORT_HTML}")
    return EXIT_TRIAL_ERRORS if any(r["status"] == record.Status.ERROR for r in analysis.records) else EXIT_OK


def progress_line(trial: dict, done: int, total: int) -> str:
    """One finished trial, as the live view prints it above the table; its
    figures are the registry's (figures.FIGURES), marked as the tables mark
    them (unstable `!`, `(smoke)`)."""
    status = trial["status"]
    colour = "green" if status == record.Status.OK else "red"
    line = f"\\[{done}/{total}] {escape(trial['trial_id'])} [{colour}]{status}[/]"
    if status == record.Status.OK:
        line += live_figures(trial)
    else:
        line += f"  {escape(str(trial.get('error')))}"
    if trial.get("seconds") is not None:
        line += f"  ({trial['seconds']:.0f} s)"
    return line
