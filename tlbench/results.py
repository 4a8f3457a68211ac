"""Run folders and the files in them.

`trials.jsonl` gets one whole line per finished trial, appended with a single
write and fsync'd before the next trial's result is taken, so a crash can cut
at most the line being written; readers skip such a line and say so.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlbench.errors import UsageError

TRIALS = "trials.jsonl"
ENV = "env.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REQUIRED_KEYS = ("trial_id", "backbone", "mode", "batch_size", "dataset", "status")


def prepare_parent(out: str) -> Path:
    """The parent folder for run folders, created if needed and checked
    writable."""
    parent = Path(out).expanduser()
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"--out '{out}' is a file; give a folder for run folders")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out '{out}' can't be created: {error.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out '{out}' is not writable")
    return parent


def new_run_dir(parent: Path, device_tag: str) -> Path:
    """`<UTC time>-<host>-<device>`, never reused: a clash gets a suffix."""
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


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary sibling, fsync, then rename over `path`: a reader
    sees the old file or the new one, never half of one."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(staging, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def append_record(run_dir: Path, record: dict) -> None:
    """Append one trial record as one line, durably."""
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(run_dir / TRIALS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {run_dir / TRIALS}: {written} of {len(line)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class RunContents:
    run_dir: Path
    records: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # one line each


def is_run_dir(path: Path) -> bool:
    return (path / TRIALS).is_file() or (path / ENV).is_file()


def read_run(run_dir: Path) -> RunContents:
    """Everything readable in a run folder; unreadable parts become warnings."""
    if not run_dir.is_dir():
        raise UsageError(f"run folder '{run_dir}' does not exist")
    if not is_run_dir(run_dir):
        raise UsageError(f"'{run_dir}' is not a tlbench run folder (no {TRIALS} or {ENV})")
    contents = RunContents(run_dir)
    env_path = run_dir / ENV
    if env_path.is_file():
        try:
            env = json.loads(env_path.read_text())
        except (OSError, ValueError) as error:
            contents.warnings.append(f"{ENV} unreadable ({error}); environment left out")
        else:
            if isinstance(env, dict):
                contents.env = env
                _check_version(env, contents.warnings)
            else:
                contents.warnings.append(f"{ENV} is not a JSON object; environment left out")
    trials_path = run_dir / TRIALS
    latest: dict[str, dict] = {}
    if trials_path.is_file():
        for number, line in enumerate(trials_path.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                contents.warnings.append(f"{TRIALS} line {number} is cut or garbled; skipped")
                continue
            missing = [key for key in REQUIRED_KEYS if not isinstance(record, dict) or key not in record]
            if missing:
                contents.warnings.append(f"{TRIALS} line {number} lacks {', '.join(missing)}; skipped")
                continue
            latest[record["trial_id"]] = record
    # A resumed run appends a new record for a trial that ended in error
    # before: the last record of a trial is the one that counts.
    contents.records = list(latest.values())
    return contents


def _check_version(env: dict, warnings: list) -> None:
    from tlbench import __version__

    written_by = (env.get("versions") or {}).get("tlbench")
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
