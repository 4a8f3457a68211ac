"""Run folders and the files in them: written by the driver, read by the
driver (`--resume`), `report` and `compare`.

`trials.jsonl` gets one whole line per finished trial, appended with a single
write and fsync'd before the next trial's result is taken, so a crash can cut
at most the line being written; readers skip such a line and say so. Every
line is read through `record.checked`, and env.json through `run_env.checked`.
A run folder is locked (`.lock`) while a run or a resume writes to it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlbench import record, run_env
from tlbench.errors import UsageError, os_reason
from tlbench.files import FolderLock, expand_user

TRIALS = "trials.jsonl"
ENV = "env.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
TRIALS_CSV = "trials.csv"  # these two: reports/export.py
TENSORBOARD = "tensorboard"  # a folder of event files
LOCK = ".lock"


def lock(run_dir: Path) -> FolderLock:
    """Held while a run or a resume writes to `run_dir`; a second one gets a
    UsageError."""
    return FolderLock(run_dir, LOCK, f"run folder '{run_dir}' is being written by another tlbench run")


def prepare_parent(out: str) -> Path:
    """The parent folder for run folders, checked: a folder, or one that can
    be made in a writable one. It is made with the first run folder, so a run
    refused before that (its weights, say) leaves nothing behind."""
    parent = expand_user(out, "--out")
    if _kind(parent, "--out") == "file":
        raise UsageError(f"--out '{out}' is a file; give a folder for run folders")
    existing, kind = next((f, k) for f in (parent, *parent.parents) if (k := _kind(f, "--out")))
    if kind == "file":
        raise UsageError(f"--out '{out}' can't be created: '{existing}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out '{out}' is not writable" + ("" if existing == parent else f" ('{existing}' is not)"))
    return parent


def new_run_dir(parent: Path, device_tag: str) -> Path:
    """`<UTC time>-<host>-<device>`, never reused: a clash gets a suffix;
    `parent` is made first if need be."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out '{parent}' can't be created: {os_reason(error)}") from None
    host = re.sub(r"[^A-Za-z0-9-]+", "-", os.uname().nodename.split(".")[0])[:24] or "host"
    base = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{host}-{device_tag}"
    for attempt in range(1, 1000):
        run_dir = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise UsageError(f"no free run folder name under {parent}")


def append_record(run_dir: Path, trial: dict) -> None:
    """Append one trial record as one line, durably.

    A write that fails (a full disk) is undone: the file is cut back to where
    it was, so it never ends in half a record that the next append would run
    into. A file that already ends in a cut line (a crash) gets a newline
    first, so the new record stays whole."""
    line = (json.dumps(trial, sort_keys=True, default=str) + "\n").encode()
    path = run_dir / TRIALS
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (wrote {written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


@dataclass
class RunContents:
    run_dir: Path
    records: list[record.TrialRecord] = field(default_factory=list)
    env: run_env.RunEnv = field(default_factory=lambda: run_env.RunEnv())
    warnings: list[str] = field(default_factory=list)  # one line each
    # env.json's fields that lost a part of the wrong type (or went whole):
    # field -> the checker's lines. --resume refuses a plan that is here.
    env_dropped: dict[str, list[str]] = field(default_factory=dict)


def is_run_dir(path: Path) -> bool:
    return (path / TRIALS).is_file() or (path / ENV).is_file()


def _kind(path: Path, what: str) -> str | None:
    """What is at `path`: "folder", "file" (anything else) or None (nothing);
    a path the system can't even look up (a name too long) is a UsageError."""
    try:
        return "folder" if path.is_dir() else "file" if path.exists() else None
    except OSError as error:
        raise UsageError(f"{what} '{path}': {os_reason(error)}") from None


def read_run(run_dir: Path) -> RunContents:
    """Everything readable in a run folder; unreadable parts become warnings."""
    kind = _kind(run_dir, "run folder")
    if kind == "file":
        raise UsageError(f"'{run_dir}' is a file, not a run folder")
    if kind is None:
        raise UsageError(f"run folder '{run_dir}' does not exist")
    _check_files(run_dir)
    if not is_run_dir(run_dir):
        raise UsageError(f"'{run_dir}' is not a tlbench run folder (no {TRIALS} or {ENV})")
    contents = RunContents(run_dir)
    env_path = run_dir / ENV
    if env_path.is_file():
        try:
            env = json.loads(env_path.read_text(errors="replace"))
        except (OSError, ValueError, RecursionError) as error:
            contents.warnings.append(f"{ENV} unreadable ({error}); environment left out")
        else:
            if isinstance(env, dict):
                contents.env, contents.env_dropped = run_env.checked(env)
                _check_version(contents.env, contents.warnings)
                dropped = contents.env_dropped.values()
                contents.warnings += [f"{ENV}: {line}; left out" for lines in dropped for line in lines]
            else:
                contents.warnings.append(f"{ENV} is not a JSON object; environment left out")
    trials_path = run_dir / TRIALS
    latest: dict[str, record.TrialRecord] = {}
    if trials_path.is_file():
        try:
            text = trials_path.read_text(errors="replace")
        except OSError as error:
            raise UsageError(f"can't read {trials_path}: {os_reason(error)}") from None
        # Records are split on "\n" only: tlbench writes one per line, and other
        # line separators may stand inside a JSON string.
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                payload = json.loads(line)
            except (ValueError, RecursionError):
                contents.warnings.append(f"{TRIALS} line {number} is cut or garbled; skipped")
                continue
            trial, notes = record.checked(payload)
            if trial is None:
                contents.warnings.append(f"{TRIALS} line {number} {notes[0]}")
                continue
            contents.warnings += [f"{TRIALS} line {number}: {note}" for note in notes]
            latest[trial["trial_id"]] = trial
    # A resumed run appends a new record for a trial that ended in error
    # before: the last record of a trial is the one that counts.
    contents.records = list(latest.values())
    return contents


def _check_files(run_dir: Path) -> None:
    """The files a run folder holds are regular files where they exist: a
    folder (or a pipe) named trials.jsonl would be read as nothing, or block,
    and refuse the next record only after a trial has run."""
    for name in (TRIALS, ENV, LOCK):
        path = run_dir / name
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            raise UsageError(f"'{path}': {os_reason(error)}") from None
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "not a regular file"
            raise UsageError(f"'{path}' is {kind}, not a file: is '{run_dir}' a tlbench run folder?")


def _check_version(env: run_env.RunEnv, warnings: list[str]) -> None:
    from tlbench import __version__

    written_by = env.get("versions", {}).get("tlbench")
    if written_by != __version__:
        warnings.append(
            f"this run was written by tlbench {written_by or 'of an unknown version'}, this is {__version__}: "
            "fields it lacks show as '-'"
        )


def latest_run_dir(parent: Path) -> Path:
    """The newest run folder under `parent` (run ids sort by time)."""
    runs = sorted(p for p in parent.iterdir() if p.is_dir() and is_run_dir(p)) if parent.is_dir() else []
    if not runs:
        raise UsageError(f"no run folders under '{parent}'; run 'python -m tlbench run --all' first")
    return runs[-1]
