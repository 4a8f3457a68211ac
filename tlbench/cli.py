"""The command line: parse, check, dispatch. `list`, `run`, `screen`,
`prefetch`, `report`, `compare`.

Everything the user typed is checked here, before Ray starts (the values
themselves by `checks`, the run request by `driver.request`); a bad value
ends the command with one line on stderr and exit status 2. The work is done
by `driver.runner` (a run), `reports` (report, compare) and, for what needs
TensorFlow, the worker side in a fresh process (`isolated`).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from rich.console import Console

from tlbench import __version__, checks, data, results
from tlbench.driver.request import WEIGHTS_POLICIES, RunRequest, check_resume_args, parse_module_overrides
from tlbench.driver.stopping import Terminated, stop_signals
from tlbench.errors import ResultsUnwritable, UsageError, one_line
from tlbench.plan import BATCH_NORM_POLICIES, DEFAULT_BATCH_NORM, DEFAULT_BATCH_NORM_MOMENTUM, DEFAULT_MODES
from tlbench.registry import DEFAULT_BACKBONES, MODES
from tlbench.reports.compare import Thresholds

COMMANDS = ("list", "run", "screen", "report", "compare", "prefetch")
SCREEN_OPTIONS = ("--dataset", "--quick", "--weights", "--module", "--address")  # run's, for screen too
DEFAULT_OUT = "results"
EXIT_USAGE = 2
EXIT_NOT_MET = 1  # report: no configuration fits; compare: a regression
EXIT_RESULTS_UNWRITABLE = 3  # a full disk or a lost folder: the run stopped, what was written is intact
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # Ctrl-C, SIGTERM: 128 + the signal's number


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; one line is enough
        raise UsageError(message)


def _arg(check):
    """A check from `checks` as an argparse type (argparse names the option)."""

    def parse(text):
        try:
            return check(text)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tlbench", description="Benchmark TF Hub backbones for transfer learning.")
    parser.add_argument("--version", action="version", version=f"tlbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="backbones, modes and datasets known")
    default_backbones = f"backbones (default: {' '.join(DEFAULT_BACKBONES)})"
    module = {"action": "append", "metavar": "BACKBONE=PATH_OR_URL"}

    run = commands.add_parser("run", help="run a grid of trials")
    screen = commands.add_parser("screen", help="rank every backbone by one features pass each, nothing trained")
    screen.add_argument("--backbone", help="backbones (default: every one `list` shows)", nargs="+", metavar="B")
    for flag, helptext, kwargs in (
        ("--all", "the default grid: default backbones x modes x batch sizes, by the cluster's devices",
         {"action": "store_true"}),
        ("--backbone", default_backbones, {"nargs": "+", "metavar": "B"}),
        ("--mode", (f"{', '.join(MODES)}: how deep training reaches (default: by the cluster's devices; "
         f"CPU: {', '.join(DEFAULT_MODES['cpu'])})"), {"nargs": "+", "metavar": "M"}),
        ("--batch-size", ("batch sizes (default: by the cluster's devices); max: per backbone x mode the largest "
         "that trains within the device's memory (or --device-memory), found by trying"),
         {"nargs": "+", "type": _arg(checks.batch_size_or_max), "metavar": "N"}),
        ("--dataset", f"'{data.EMBEDDED}' (embedded), a folder with one sub-folder per class, or tfds:NAME",
         {"default": data.EMBEDDED, "metavar": "NAME_OR_FOLDER"}),
        ("--out", "parent folder for run folders (default: results)", {"default": DEFAULT_OUT, "metavar": "DIR"}),
        ("--quick", "same grid and code path, a few steps each (smoke test)", {"action": "store_true"}),
        ("--weights", "auto: TF Hub, else a random-init stand-in; hub: TF Hub or fail; standin: no network",
         {"choices": WEIGHTS_POLICIES, "default": "auto"}),
        ("--module", "use this SavedModel / TF Hub module for a backbone (repeatable)", module),
        ("--address", "join this Ray cluster (default: RAY_ADDRESS, else a local Ray)", {"metavar": "RAY_ADDRESS"}),
        ("--seed", "first seed of each trial: head initialisation, shuffling (default 0)",
         {"type": _arg(checks.seed), "default": 0}),
        ("--seeds", "repeat every trial with seeds S..S+N-1; the report gives mean and std (default 1)",
         {"type": _arg(checks.seeds), "default": 1, "metavar": "N"}),
        ("--split-seed", "seed of the stratified split, fixed for a run (default 0)",
         {"type": _arg(checks.seed), "default": 0, "metavar": "N"}),
        ("--train-size", "at most N training images (stratified), for quick comparisons",
         {"type": _arg(checks.train_size), "metavar": "N"}),
        ("--batch-norm-momentum", (f"BatchNorm moving-average momentum with --batch-norm train "
         f"(default {DEFAULT_BATCH_NORM_MOMENTUM})"),
         {"type": _arg(checks.momentum), "default": DEFAULT_BATCH_NORM_MOMENTUM, "metavar": "F"}),
        ("--batch-norm", (f"the backbone's BatchNorm while it trains: frozen (inference mode) or train "
         f"(batch statistics) (default {DEFAULT_BATCH_NORM})"),
         {"choices": BATCH_NORM_POLICIES, "default": DEFAULT_BATCH_NORM}),
        ("--xla", "compile every step with XLA (jit_compile)", {"action": "store_true"}),
        ("--mixed-precision", ("mixed_float16 on GPUs of compute capability 7.0+: the head only, a TF Hub "
         "module keeps float32"), {"action": "store_true"}),
        ("--device-memory", ("run every trial as if its device had SIZE of memory (e.g. 2GiB): a GPU as a "
         "logical device of that size, a CPU by its allocator's limit; a step past it ends the trial 'oom'"),
         {"type": _arg(checks.device_memory), "metavar": "SIZE"}),
        ("--concurrency", ("trials at once per CPU-only node (default 1: each trial gets every core; GPUs: "
         "one trial per GPU)"), {"type": _arg(checks.concurrency), "metavar": "N"}),
        ("--max-retries", ("reruns of a trial whose worker process or node died (default 1); out-of-memory "
         "is never retried"), {"type": _arg(checks.max_retries), "default": 1, "metavar": "N"}),
        ("--resume", "run the trials of RUN_DIR that have no finished record yet, appending to it", {"metavar": "RUN_DIR"}),
        ("--wide", "every column in one table, however wide the terminal (a file or a pipe always)", {"action": "store_true"}),
    ):  # fmt: skip
        run.add_argument(flag, help=helptext, **kwargs)
        if flag in SCREEN_OPTIONS:
            screen.add_argument(flag, help=helptext, **kwargs)

    prefetch = commands.add_parser(
        "prefetch", help="put modules into TFHUB_CACHE_DIR under their handles, for nodes without internet"
    )
    prefetch.add_argument("--backbone", help=default_backbones, nargs="+", metavar="B")
    prefetch.add_argument("--module", help="copy this module instead of downloading", **module)

    report = commands.add_parser(
        "report", help="re-render a run's tables, report.md, report.html and plots; choose under constraints"
    )
    report.add_argument(
        "run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (default: the newest under results/)"
    )
    for flag, helptext, kwargs in (
        ("--memory-budget", "peak memory at most SIZE (e.g. 4GiB, 512MiB, 8GB)", {"type": _arg(checks.size), "metavar": "SIZE"}),
        ("--min-throughput", "images/s at least", {"type": _arg(checks.positive("min throughput")), "metavar": "IMG_PER_S"}),
        ("--throughput", "which images/s --min-throughput holds for (default: train)", {"choices": ("train", "infer"), "default": "train"}),
        ("--min-accuracy", "mean test accuracy at least F", {"type": _arg(checks.fraction("min accuracy")), "metavar": "F"}),
        ("--wide", "every column in one table, however wide the terminal (a file or a pipe always)", {"action": "store_true"}),
    ):  # fmt: skip
        report.add_argument(flag, help=helptext, **kwargs)

    compare = commands.add_parser(
        "compare", help="each configuration's change from RUN_A to RUN_B; exit 1 on a regression beyond the thresholds"
    )
    compare.add_argument("run_a", metavar="RUN_A", help="the run before")
    compare.add_argument("run_b", metavar="RUN_B", help="the run after")
    for flag, check, default, helptext in (
        ("--accuracy-drop", checks.fraction("accuracy drop"), Thresholds.accuracy_drop,
         "a test accuracy drop beyond F (and the seeds' noise) is a regression"),
        ("--slowdown", checks.fraction("slowdown"), Thresholds.slowdown,
         "losing more than this fraction of images/s is a regression"),
        ("--memory-growth", checks.positive("memory growth"), Thresholds.memory_growth,
         "peak memory growing by more than this fraction is a regression"),
    ):  # fmt: skip
        compare.add_argument(
            flag, help=f"{helptext} (default {default})", type=_arg(check), default=default, metavar="F"
        )
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: don't squeeze the table into 80 columns
        console = Console(width=220)
    try:
        with stop_signals():  # SIGTERM stops a command as Ctrl-C does
            _check_command(argv)
            args = build_parser().parse_args(argv)
            handlers = {"list": cmd_list, "run": cmd_run, "screen": cmd_screen, "report": cmd_report}
            handlers["compare"] = cmd_compare
            return handlers.get(args.command, cmd_prefetch)(args, argv, console)
    except (UsageError, ResultsUnwritable) as error:
        print(f"tlbench: error: {one_line(error, 100_000)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_RESULTS_UNWRITABLE
    except KeyboardInterrupt as stop:  # a run says itself what it kept; SIGTERM is Terminated
        print(f"tlbench: {'terminated' if isinstance(stop, Terminated) else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED


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
    from tlbench.listing import print_listing

    print_listing(console)
    return 0


def cmd_run(args, argv, console: Console, started=None) -> int:
    """`started(run_dir)` is called once the run folder is known (`api.run`)."""
    from tlbench.driver import runner

    settings = runner.Settings(args.out, args.address, args.concurrency, args.max_retries, argv, started, args.wide)
    if args.resume is not None:  # '' too: refused by check_resume_args, not read as no --resume
        return runner.resume(check_resume_args(args), settings, console)
    return runner.start(RunRequest.from_args(args), settings, console)


def cmd_screen(args, argv, console: Console) -> int:
    from tlbench.driver import runner, screen

    settings = runner.Settings(DEFAULT_OUT, args.address, argv=argv)
    return screen.screen(RunRequest.for_screen(args), settings, console)


def cmd_report(args, argv, console: Console) -> int:
    """Exit status 1 when constraints were given and nothing fits; 3 (over 1) when the files can't be written."""
    from tlbench.reports.analysis import analyse
    from tlbench.reports.decide import Constraints, choose
    from tlbench.reports.report import write_report
    from tlbench.reports.terminal import print_choice, print_report

    analysis = analyse(results.read_run(Path(args.run_dir or results.latest_run_dir(Path(DEFAULT_OUT)))))
    try:
        written, unwritable = write_report(analysis), None
    except ResultsUnwritable as error:  # a read-only or full folder: the terminal still gets the report
        written, unwritable = {}, error
    print_report(analysis, console, wide=args.wide or not console.is_terminal)  # a file or a pipe: every column
    if written:
        console.print("report: " + ", ".join(str(path) for path in written.values()))
    constraints = Constraints(args.memory_budget, args.min_throughput, args.min_accuracy, args.throughput)
    choice = choose(analysis.configurations, constraints) if constraints.given else None
    if choice is not None:
        print_choice(choice, console)
    if unwritable:
        raise ResultsUnwritable(f"{unwritable}; the report is printed above, its files are as they were")
    return EXIT_NOT_MET if choice is not None and choice.best is None else 0


def cmd_compare(args, argv, console: Console) -> int:
    """Exit status 1 when any configuration regressed beyond the thresholds."""
    from tlbench.reports.analysis import analyse
    from tlbench.reports.terminal import print_comparison

    run_a, run_b = (analyse(results.read_run(Path(folder))) for folder in (args.run_a, args.run_b))
    thresholds = Thresholds(args.accuracy_drop, args.slowdown, args.memory_growth)
    return EXIT_NOT_MET if print_comparison(run_a, run_b, thresholds, console) else 0


def cmd_prefetch(args, argv, console: Console) -> int:
    from tlbench.driver.prefetch import prefetch

    return prefetch(args.backbone, parse_module_overrides(args.module), console)
