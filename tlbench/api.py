"""tlbench from Python, for notebooks: `run(...)` takes the options of
`python -m tlbench run` as keyword arguments and returns the run it wrote;
`load_run(path)` reads a run folder back.

The keywords are the command line's long options with `_` for `-`
(`batch_size=[8, 16]` is `--batch-size 8 16`, `all=True` is `--all`,
`module={"resnet_v2_50": "/path"}` is `--module resnet_v2_50=/path`). They
go through the command line's own parser, so a notebook gets exactly the
checks, defaults and behaviour of the command; a bad value raises
`UsageError` with the one line the command would print.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from tlbench import results, run_env
from tlbench.errors import UsageError


@dataclass(frozen=True)
class Run:
    """A run folder and what it holds."""

    path: Path
    records: list  # one dict per trial record, in the order written (trials.jsonl)
    env: run_env.RunEnv  # env.json: the machine, the versions, the resolved plan (fields of the wrong type left out)
    warnings: list  # one line per part of the folder that could not be read
    exit_status: int | None = None  # the command's exit status; None when read back

    @property
    def trials_csv(self) -> Path:
        """One row per trial, for pandas: `pandas.read_csv(run.trials_csv)`."""
        return self.path / results.TRIALS_CSV


def load_run(path) -> Run:
    """The run in the folder `path` (a `run` command's output)."""
    if not isinstance(path, (str, Path)) or not str(path).strip():
        # Path("") is the current folder: refused, as the command refuses an empty --resume.
        raise UsageError(f"load_run() needs a run folder's path, not {path!r}")
    contents = results.read_run(Path(path).expanduser())
    return Run(contents.run_dir, contents.records, contents.env, contents.warnings)


def run(*, console: Console | None = None, **options) -> Run:
    """Run a grid, as `python -m tlbench run` with these options would, and
    return the run folder it wrote. Interrupted (Ctrl-C, the notebook's stop
    button) after its folder was made, it returns what was finished."""
    from tlbench import cli

    argv = ["run", *command_line(options)]
    args = cli.build_parser().parse_args(argv)
    folders = []
    status = cli.cmd_run(args, argv, console or Console(), started=folders.append)
    if not folders:  # stopped before the run had a folder: nothing to return
        raise KeyboardInterrupt
    return _with_status(load_run(folders[-1]), status)


def _with_status(loaded: Run, status: int) -> Run:
    return Run(loaded.path, loaded.records, loaded.env, loaded.warnings, status)


def command_line(options: dict) -> list[str]:
    """Keyword options as `run`'s command-line arguments."""
    from tlbench import cli

    names = [flag[2:].replace("-", "_") for flag in _run_flags(cli.build_parser()) if flag != "--help"]
    argv = []
    for name, value in options.items():
        if name not in names:  # compared as keywords: "--" alone would make every flag look alike
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"run() has no option '{name}'; {hint}options: {', '.join(names)}")
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:  # the option's default
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, dict):  # --module NAME=PATH, once per backbone
            for key, path in value.items():
                argv += [flag, f"{key}={path}"]
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def _run_flags(parser) -> list[str]:
    subcommands = next(a for a in parser._actions if a.dest == "command")  # argparse keeps no public handle
    run_parser = subcommands.choices["run"]
    return [flag for action in run_parser._actions for flag in action.option_strings if flag.startswith("--")]


__all__ = ["Run", "UsageError", "load_run", "run"]
