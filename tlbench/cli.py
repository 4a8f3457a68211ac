"""The command line: `list`, `run` and `report` (see DESIGN.md).

Everything the user typed is checked here, before Ray starts; a bad value ends
the command with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from tlbench import __version__, data, results
from tlbench.compare import Thresholds
from tlbench.errors import UsageError
from tlbench.plan import BUDGETS, DEFAULT_BATCH_NORM_MOMENTUM, Protocol, build_grid, choose_budget, default_selection
from tlbench.progress import GridProgress
from tlbench.registry import BACKBONES, DEFAULT_BACKBONES, MODES, check_mode, get_backbone
from tlbench.weights import WEIGHTS_POLICIES, parse_module_overrides

COMMANDS = ("list", "run", "report", "compare", "prefetch")
MAX_BATCH_SIZE = 4096
DEFAULT_OUT = "results"
EXIT_USAGE = 2
EXIT_TRIAL_ERRORS = 1
EXIT_INTERRUPTED = 130
EXIT_RESULTS_UNWRITABLE = 3  # a full disk or a lost folder: the run stopped, what was written is intact
FINISHED = ("ok", "oom")  # statuses that --resume does not run again


class ResultsUnwritable(Exception):
    """A run's files can't be written (a full disk): the run stops with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; one line is enough
        raise UsageError(message)


def _whole_number(what: str, low: int, high: int | None = None):
    """An argparse type for an int in [low, high], with a one-line complaint."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got '{text}'") from None
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, got {value}")
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be {low} or more, got {value}")
        return value

    return parse


batch_size = _whole_number("batch size", 1, MAX_BATCH_SIZE)
seed = _whole_number("seed", 0)


def _number(what: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what} must be a finite number, got '{text}'")
    return value


def _positive(what: str):
    def parse(text: str) -> float:
        value = _number(what, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be more than 0, got {text}")
        return value

    return parse


def _fraction(what: str):
    def parse(text: str) -> float:
        value = _number(what, text)
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{what} must be between 0 and 1, got {text}")
        return value

    return parse


def _size(text: str) -> float:
    from tlbench.decide import parse_bytes

    try:
        return parse_bytes(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _momentum(text: str) -> float:
    """An argparse type for a BatchNorm momentum, strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch norm momentum must be a number, got '{text}'") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"batch norm momentum must be between 0 and 1 (exclusive), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tlbench", description="Benchmark TF Hub backbones for transfer learning.")
    parser.add_argument("--version", action="version", version=f"tlbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="backbones, modes and datasets known")

    run = commands.add_parser("run", help="run a grid of trials")
    run.add_argument(
        "--all", action="store_true", help="the default grid: default backbones x both modes x default batch sizes"
    )
    run.add_argument("--backbone", nargs="+", metavar="B", help=f"backbones (default: {' '.join(DEFAULT_BACKBONES)})")
    run.add_argument("--mode", nargs="+", metavar="M", help="transfer and/or finetune (default: both)")
    run.add_argument("--batch-size", nargs="+", type=batch_size, metavar="N", help="batch sizes (default: by budget)")
    run.add_argument(
        "--dataset",
        default=data.EMBEDDED,
        metavar="NAME_OR_FOLDER",
        help=f"'{data.EMBEDDED}' (embedded), a folder with one sub-folder per class, or tfds:NAME",
    )
    run.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help="parent folder for run folders (default: results)"
    )
    run.add_argument("--quick", action="store_true", help="same grid and code path, a few steps each (smoke test)")
    run.add_argument(
        "--weights",
        choices=WEIGHTS_POLICIES,
        default="auto",
        help="auto: TF Hub, else a random-init stand-in; hub: TF Hub or fail; standin: no network",
    )
    run.add_argument(
        "--module",
        action="append",
        metavar="BACKBONE=PATH_OR_URL",
        help="use this SavedModel / TF Hub module for a backbone (repeatable)",
    )
    run.add_argument(
        "--address", metavar="RAY_ADDRESS", help="join this Ray cluster (default: RAY_ADDRESS, else a local Ray)"
    )
    run.add_argument(
        "--seed", type=seed, default=0, help="first seed of each trial: head initialisation, shuffling (default 0)"
    )
    run.add_argument(
        "--seeds",
        type=_whole_number("seeds", 1, 100),
        default=1,
        metavar="N",
        help="repeat every trial with seeds S..S+N-1; the report gives mean and std (default 1)",
    )
    run.add_argument(
        "--split-seed",
        type=seed,
        default=0,
        metavar="N",
        help="seed of the stratified split, fixed for a run (default 0)",
    )
    run.add_argument(
        "--train-size",
        type=_whole_number("train size", 1),
        metavar="N",
        help="at most N training images (stratified), for quick comparisons",
    )
    run.add_argument(
        "--batch-norm-momentum",
        type=_momentum,
        default=DEFAULT_BATCH_NORM_MOMENTUM,
        metavar="F",
        help=f"BatchNorm moving-average momentum when fine-tuning (default {DEFAULT_BATCH_NORM_MOMENTUM})",
    )
    run.add_argument("--xla", action="store_true", help="compile every step with XLA (jit_compile)")
    run.add_argument(
        "--mixed-precision",
        action="store_true",
        help="mixed_float16 on GPUs of compute capability 7.0+: the head only, a TF Hub module keeps float32",
    )
    run.add_argument(
        "--concurrency",
        type=_whole_number("concurrency", 1, 1024),
        metavar="N",
        help="trials at once per CPU-only node (default 1: each trial gets every core; GPUs: one trial per GPU)",
    )
    run.add_argument(
        "--max-retries",
        type=_whole_number("max retries", 0, 100),
        default=1,
        metavar="N",
        help="reruns of a trial whose worker process or node died (default 1); out-of-memory is never retried",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="run the trials of RUN_DIR that have no ok/oom record yet, appending to it",
    )

    prefetch = commands.add_parser(
        "prefetch", help="put modules into TFHUB_CACHE_DIR under their handles, for nodes without internet"
    )
    prefetch.add_argument(
        "--backbone", nargs="+", metavar="B", help=f"backbones (default: {' '.join(DEFAULT_BACKBONES)})"
    )
    prefetch.add_argument(
        "--module", action="append", metavar="BACKBONE=PATH_OR_URL", help="copy this module instead of downloading"
    )

    report = commands.add_parser(
        "report", help="re-render a run's tables, report.md, report.html and plots; choose under constraints"
    )
    report.add_argument(
        "run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (default: the newest under results/)"
    )
    report.add_argument(
        "--memory-budget", type=_size, metavar="SIZE", help="peak memory at most SIZE (e.g. 4GiB, 512MiB, 8GB)"
    )
    report.add_argument(
        "--min-throughput", type=_positive("min throughput"), metavar="IMG_PER_S", help="images/s at least"
    )
    report.add_argument(
        "--throughput",
        choices=("train", "infer"),
        default="train",
        help="which images/s --min-throughput holds for (default: train)",
    )
    report.add_argument(
        "--min-accuracy", type=_fraction("min accuracy"), metavar="F", help="mean test accuracy at least F"
    )

    compare = commands.add_parser(
        "compare", help="each trial's change from RUN_A to RUN_B; exit 1 on a regression beyond the thresholds"
    )
    compare.add_argument("run_a", metavar="RUN_A", help="the run before")
    compare.add_argument("run_b", metavar="RUN_B", help="the run after")
    compare.add_argument(
        "--accuracy-drop",
        type=_fraction("accuracy drop"),
        default=Thresholds.accuracy_drop,
        metavar="F",
        help=f"a test accuracy drop beyond F (and the seeds' noise) is a regression (default {Thresholds.accuracy_drop})",
    )
    compare.add_argument(
        "--slowdown",
        type=_fraction("slowdown"),
        default=Thresholds.slowdown,
        metavar="F",
        help=f"losing more than this fraction of images/s is a regression (default {Thresholds.slowdown})",
    )
    compare.add_argument(
        "--memory-growth",
        type=_positive("memory growth"),
        default=Thresholds.memory_growth,
        metavar="F",
        help=f"peak memory growing by more than this fraction is a regression (default {Thresholds.memory_growth})",
    )
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: don't squeeze the table into 80 columns
        console = Console(width=220)
    try:
        _check_command(argv)
        args = build_parser().parse_args(argv)
        handlers = {
            "list": cmd_list,
            "run": cmd_run,
            "report": cmd_report,
            "compare": cmd_compare,
            "prefetch": cmd_prefetch,
        }
        return handlers[args.command](args, argv, console)
    except UsageError as error:
        print(f"tlbench: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except ResultsUnwritable as error:
        print(f"tlbench: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_RESULTS_UNWRITABLE
    except KeyboardInterrupt:
        print("tlbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(error: BaseException) -> str:
    """The message on one line, whatever the user typed into it."""
    return str(error).replace("\r", "\\r").replace("\n", "\\n")


def _check_command(argv) -> None:
    """An unknown subcommand, with the closest valid one."""
    if not argv:
        raise UsageError(f"say a command: {', '.join(COMMANDS)} (see --help)")
    first = argv[0]
    if not first.startswith("-") and first not in COMMANDS:
        close = difflib.get_close_matches(first, COMMANDS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"unknown command '{first}': {hint}commands: {', '.join(COMMANDS)}")


def cmd_list(args, argv, console: Console) -> int:
    flops, problem = _backbone_flops(console)
    table = Table(title="backbones (TF Hub image feature vectors)")
    for header in ("name", "input", "features", "GFLOPs/image", "default grid", "stand-in"):
        table.add_column(header, no_wrap=True, justify="right" if header.startswith("GFLOPs") else "left")
    table.add_column("TF Hub handle", overflow="fold")
    for b in BACKBONES:
        table.add_row(
            b.name,
            f"{b.image_size}x{b.image_size}",
            str(b.feature_dim),
            f"{flops[b.name] / 1e9:.3f}" if flops.get(b.name) else "?",
            "yes" if b.in_default_grid else "",
            b.standin,
            b.handle,
        )
    console.print(table)
    console.print(
        "[dim]GFLOPs/image: one forward pass at the input size, counted from the architecture's graph "
        "(a multiply-add is 2 FLOPs)[/]"
    )
    if problem:
        console.print(f"[yellow]FLOPs not counted: {escape(problem)}[/]")
    console.print(f"modes: {', '.join(MODES)}")
    console.print(
        f"datasets: '{data.EMBEDDED}' (embedded: scikit-learn's 1,797 handwritten digits, 10 classes), "
        "a folder with one sub-folder of images per class, or tfds:NAME (TensorFlow Datasets; "
        + ("installed)" if data.tfds_installed() else "needs tensorflow-datasets, not installed)")
    )
    return 0


def _backbone_flops(console: Console) -> tuple[dict, str | None]:
    """Forward FLOPs per image of every backbone: from the cache, counting the
    missing ones once in a subprocess (the driver never imports TensorFlow)."""
    import json
    import subprocess

    from tlbench import costs

    flops = {b.name: costs.cached_backbone_flops(b.name) for b in BACKBONES}
    missing = [name for name, value in flops.items() if value is None]
    if not missing:
        return flops, None
    with console.status(f"counting FLOPs of {len(missing)} architecture(s) (once; cached) ..."):
        done = subprocess.run(
            [sys.executable, "-m", "tlbench.costs", *missing], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return flops, lines[-1] if lines else f"exit status {done.returncode}"
    return {**flops, **json.loads(done.stdout.strip().splitlines()[-1])}, None


def _selection(args) -> dict:
    chosen = {"backbones": args.backbone, "modes": args.mode, "batch_sizes": args.batch_size}
    if args.resume and (args.all or any(chosen.values())):
        raise UsageError("--resume reruns the grid of that run; drop --all/--backbone/--mode/--batch-size")
    if args.resume:
        given = [
            flag
            for flag, used in (
                ("--quick", args.quick),
                ("--module", args.module),
                ("--dataset", args.dataset != data.EMBEDDED),
                ("--seed", args.seed != 0),
                ("--seeds", args.seeds != 1),
                ("--split-seed", args.split_seed != 0),
                ("--train-size", args.train_size is not None),
                ("--batch-norm-momentum", args.batch_norm_momentum != DEFAULT_BATCH_NORM_MOMENTUM),
                ("--weights", args.weights != "auto"),
                ("--xla", args.xla),
                ("--mixed-precision", args.mixed_precision),
            )
            if used
        ]
        if given:
            raise UsageError(f"--resume keeps the settings of that run; drop {', '.join(given)}")
        return {}
    if args.all and any(chosen.values()):
        raise UsageError("--all runs the default grid; drop it, or drop --backbone/--mode/--batch-size")
    if not args.all and not any(chosen.values()):
        raise UsageError("say what to run: --all for the default grid, or --backbone/--mode/--batch-size")
    for name in chosen["backbones"] or ():
        get_backbone(name)
    for mode in chosen["modes"] or ():
        check_mode(mode)
    return {key: tuple(dict.fromkeys(values)) for key, values in chosen.items() if values}


@dataclass
class _Request:
    """What to run, from the command line or from the env.json of a run to resume."""

    chosen: dict  # backbones / modes / batch_sizes given; the rest from the default grid
    dataset: str
    seed: int
    quick: bool
    weights: str
    modules: dict  # --module overrides, {backbone: location}
    seeds: int = 1
    protocol: Protocol = field(default_factory=Protocol)
    xla: bool = False
    mixed_precision: bool = False
    run_dir: Path | None = None  # set when resuming
    done: frozenset = frozenset()  # trial ids with an ok or oom record already
    budget: str | None = None  # the budget of the run being resumed

    def as_dict(self) -> dict:
        return {
            "chosen": {key: list(values) for key, values in self.chosen.items()},
            "dataset": self.dataset,
            "seed": self.seed,
            "quick": self.quick,
            "weights": self.weights,
            "modules": self.modules,
            "seeds": self.seeds,
            "protocol": asdict(self.protocol),
            "xla": self.xla,
            "mixed_precision": self.mixed_precision,
        }


def _request(args) -> _Request:
    chosen = _selection(args)
    if not args.resume:
        # A folder is recorded by its absolute path; anything else as typed (and
        # open_dataset says what is wrong with it).
        folder = not data.is_named(args.dataset) and data.exists(Path(args.dataset))
        dataset = str(Path(args.dataset).resolve()) if folder else args.dataset
        return _Request(
            chosen,
            dataset,
            args.seed,
            args.quick,
            args.weights,
            parse_module_overrides(args.module),
            seeds=args.seeds,
            protocol=Protocol(args.split_seed, args.train_size, args.batch_norm_momentum),
            xla=args.xla,
            mixed_precision=args.mixed_precision,
        )
    run_dir = Path(args.resume)
    run = results.read_run(run_dir)
    saved = run.env.get("request")
    if not isinstance(saved, dict):
        raise UsageError(f"'{run_dir}' has no request in {results.ENV} (an interrupted start, or another version)")
    try:
        return _Request(
            chosen={key: tuple(values) for key, values in saved["chosen"].items()},
            dataset=saved["dataset"],
            seed=int(saved["seed"]),
            quick=bool(saved["quick"]),
            weights=saved["weights"],
            modules=dict(saved["modules"]),
            seeds=int(saved.get("seeds", 1)),  # runs of earlier versions had one seed
            protocol=Protocol(**saved.get("protocol", {"split_seed": int(saved["seed"])})),
            xla=bool(saved.get("xla", False)),  # runs of earlier versions had neither
            mixed_precision=bool(saved.get("mixed_precision", False)),
            run_dir=run_dir,
            done=frozenset(r["trial_id"] for r in run.records if r["status"] in FINISHED),
            budget=run.env["budget"]["name"],
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise UsageError(f"the request in {run_dir / results.ENV} is unreadable ({error!r})") from None


def cmd_run(args, argv, console: Console) -> int:
    from tlbench import cluster, environment
    from tlbench.report import print_table, write_report

    request = _request(args)
    images = data.open_dataset(request.dataset)
    data.check_train_size(images, request.protocol.train_size)
    parent = None if request.run_dir else results.prepare_parent(args.out)

    console.print("[dim]starting Ray ...[/]")
    run_dir = request.run_dir
    finished: list[dict] = []
    try:
        info = cluster.connect(args.address, args.concurrency)
        budget = BUDGETS[request.budget] if request.budget else choose_budget(request.quick, info.gpus)
        selection = {**default_selection(info.gpus), **request.chosen}
        console.print(f"[dim]choosing weights for {', '.join(selection['backbones'])} ...[/]")
        sources = cluster.prepare_sources(
            selection["backbones"], request.weights, request.modules, request.protocol.batch_norm_momentum
        )
        grid = build_grid(
            selection["backbones"],
            selection["modes"],
            selection["batch_sizes"],
            request.dataset,
            range(request.seed, request.seed + request.seeds),
            budget,
            sources,
            protocol=request.protocol,
            xla=request.xla,
            mixed_precision=request.mixed_precision,
        )
        specs = [spec for spec in grid if spec.trial_id not in request.done]
        if run_dir is None:
            run_dir = results.new_run_dir(parent, info.device_tag)
            env = environment.describe(argv, info.describe())
            env.update(
                request=request.as_dict(),
                budget=asdict(budget),
                selection={key: list(values) for key, values in selection.items()},
                dataset={
                    "name": request.dataset,
                    "images": len(images.labels),
                    "classes": images.num_classes,
                    "skipped_files": images.skipped_files,
                },
                weights={name: asdict(source) for name, source in sources.items()},
            )
            try:
                results.write_json_atomic(run_dir / results.ENV, env)
            except OSError as error:
                raise ResultsUnwritable(f"can't write {run_dir / results.ENV} ({error.strerror or error})") from None
        console.print(
            f"run {run_dir}: {len(specs)} of {len(grid)} trials to run, budget '{budget.name}', "
            f"{info.nodes} node(s), {info.gpus} GPU(s), {info.cpus} CPU(s)"
        )

        progress = GridProgress(total=len(specs), parallel=info.parallel_trials)
        with Live(progress.render(), console=console, refresh_per_second=2, transient=True) as live:

            def on_record(record: dict) -> None:
                try:
                    results.append_record(run_dir, record)  # first: nothing finished is ever lost
                except OSError as error:
                    raise ResultsUnwritable(
                        f"can't write the record of {record.get('trial_id')} to {run_dir / results.TRIALS} "
                        f"({error.strerror or error}); the run stops. The {len(finished)} record(s) written before "
                        f"are intact; make room and continue with: python -m tlbench run --resume {run_dir}"
                    ) from None
                finished.append(record)
                progress.finished(record)
                live.console.print(_progress_line(record, len(finished), len(specs)))
                live.update(progress.render())

            def on_running(running: dict) -> None:
                progress.running = running
                live.update(progress.render())

            cluster.run_trials(specs, images, info, on_record, max_retries=args.max_retries, on_running=on_running)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted:[/] {len(finished)} finished trial(s) kept")
        if run_dir is not None:
            console.print(f"resume with: python -m tlbench run --resume {run_dir}")
        return EXIT_INTERRUPTED
    finally:
        cluster.shutdown()

    run = results.read_run(run_dir)
    try:
        write_report(run)
    except OSError as error:  # the records are safe; only the report is missing
        raise ResultsUnwritable(
            f"every record is in {run_dir / results.TRIALS}, but the report can't be written "
            f"({error.strerror or error}); make room and run: python -m tlbench report {run_dir}"
        ) from None
    print_table(run, console)
    console.print(f"records: {run_dir / results.TRIALS}\nreport:  {run_dir / results.REPORT_MD}, {results.REPORT_HTML}")
    return EXIT_TRIAL_ERRORS if any(r["status"] == "error" for r in run.records) else 0


def _progress_line(record: dict, done: int, total: int) -> str:
    status = record["status"]
    colour = "green" if status == "ok" else "red"
    line = f"\\[{done}/{total}] {escape(record['trial_id'])} [{colour}]{status}[/]"
    if status == "ok":
        line += (
            f"  test acc {record['test_accuracy']:.3f}  train {record['train_images_per_sec']:.1f} img/s"
            f"  infer {record['infer_images_per_sec']:.1f} img/s"
        )
    else:
        line += f"  {escape(str(record.get('error')))}"
    if record.get("seconds") is not None:
        line += f"  ({record['seconds']:.0f} s)"
    return line


def cmd_report(args, argv, console: Console) -> int:
    """Exit status 1 when constraints were given and no configuration fits."""
    from tlbench.decide import Constraints, choose
    from tlbench.report import print_choice, print_table, write_report

    run_dir = Path(args.run_dir) if args.run_dir else results.latest_run_dir(Path(DEFAULT_OUT))
    run = results.read_run(run_dir)
    written = write_report(run)
    print_table(run, console)
    console.print("report: " + ", ".join(str(path) for path in written.values()))
    constraints = Constraints(args.memory_budget, args.min_throughput, args.min_accuracy, args.throughput)
    if not constraints.given:
        return 0
    choice = choose(run.records, constraints)
    print_choice(choice, console)
    return 0 if choice.best is not None else EXIT_TRIAL_ERRORS


def cmd_compare(args, argv, console: Console) -> int:
    """Exit status 1 when any configuration regressed beyond the thresholds."""
    from tlbench.columns import rich_table
    from tlbench.compare import COMPARE_COLUMNS, Thresholds, compare

    runs = [results.read_run(Path(folder)) for folder in (args.run_a, args.run_b)]
    for label, run in zip("AB", runs):
        for warning in run.warnings:
            console.print(f"[yellow]warning (run {label}):[/] {escape(warning)}")
    thresholds = Thresholds(args.accuracy_drop, args.slowdown, args.memory_growth)
    changes = compare(runs[0].records, runs[1].records, thresholds)
    title = escape(f"A: {runs[0].run_dir.name}  ->  B: {runs[1].run_dir.name}")
    console.print(rich_table([c.row for c in changes], title, COMPARE_COLUMNS, ordered=True))
    regressed = [c for c in changes if c.regressions]
    if regressed:
        console.print(f"[red]{len(regressed)} regression(s)[/] of {len(changes)} configuration(s)")
        return EXIT_TRIAL_ERRORS
    console.print(f"no regression in {len(changes)} configuration(s)")
    return 0


def cmd_prefetch(args, argv, console: Console) -> int:
    from tlbench import cluster
    from tlbench.weights import check_hub_cache_dir

    check_hub_cache_dir()
    overrides = parse_module_overrides(args.module)
    for name in args.backbone or ():
        get_backbone(name)
    # Default: the default grid's backbones, or just those --module names.
    names = tuple(dict.fromkeys((*(args.backbone or ([] if overrides else DEFAULT_BACKBONES)), *overrides)))
    try:
        cluster.connect(None)  # a local Ray: the module lands on this machine's TFHUB_CACHE_DIR
        for name, path, how in cluster.prefetch(names, overrides):
            console.print(f"{name}: {path} ({how})")
    finally:
        cluster.shutdown()
    return 0
