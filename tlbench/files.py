"""General file helpers: tlbench's cache folder and its entries made once,
`~` in paths, atomic writes of files and of whole folders, and an exclusive
lock on a folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Self

from tlbench.errors import ResultsUnwritable, UsageError, os_reason


def cache_root() -> Path:
    """tlbench's own cache (stand-in and converted SavedModels, graph counts,
    TFDS exports): `TLBENCH_CACHE_DIR`, else `~/.cache/tlbench`."""
    return Path(os.environ.get("TLBENCH_CACHE_DIR") or Path.home() / ".cache" / "tlbench")


@contextlib.contextmanager
def computed_once(entry: Path):
    """Held while this process makes the cache entry `entry` (a file or a
    folder): processes that share the cache (trials side by side on one node)
    make it once, the others wait here and then find it. A cache where no lock
    can be made (read-only) has each make its own."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(entry.parent / f".{entry.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, or when the process dies
        yield
    finally:
        os.close(fd)


def is_url(location: str) -> bool:
    """A module location tensorflow_hub resolves over the network."""
    return location.startswith(("http://", "https://", "gs://"))


def expand_user(path: str, what: str) -> Path:
    """`~` and `~user` expanded; a user that doesn't exist is a UsageError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "Could not determine home directory."
        raise UsageError(f"{what} '{path}': no such user's home folder") from None


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary sibling, fsync, then rename over `path`: a reader
    sees the old file or the new one, never half of one. A write or rename
    that fails (a full disk, a read-only folder) leaves no temporary file
    behind, and its OSError names `path`, not the sibling."""
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(staging, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staging, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            staging.unlink()
        if isinstance(error, OSError):  # ENOSPC from close() names no file at all
            raise OSError(error.errno, os_reason(error), str(path)) from None
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, payload) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def replaced_together(folder: Path):
    """A private staging folder inside `folder`: the files the block writes
    into it replace those of the same names in `folder` once the block has
    written every one. When anything fails the staging folder goes and
    `folder` is as it was (no file half-replaced, no mix of old and new); an
    OSError becomes ResultsUnwritable naming the file of `folder` (or
    `folder` itself) that couldn't be written."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    except OSError as error:
        raise ResultsUnwritable(f"can't write into {folder} ({os_reason(error)})") from None
    try:
        yield staging
        # Renames take no data blocks: a full disk fails the writes above, not these.
        for written in sorted(staging.iterdir()):
            os.replace(written, folder / written.name)
    except OSError as error:
        failed = Path(error.filename or folder)
        if failed.parent == staging:
            failed = folder / failed.name
        raise ResultsUnwritable(f"can't write {failed} ({os_reason(error)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_folder_atomically(target: Path, stamp: str, fill) -> None:
    """Build a cache folder: `fill(staging)` writes it and returns what it
    holds, saved as the JSON file `stamp` in it; readers trust a folder with
    its stamp. The folder is built as a temporary sibling and renamed into
    place, so a crash or a concurrent build never leaves a half-written
    folder where a trial would read it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        staging.mkdir()
        (staging / stamp).write_text(json.dumps(fill(staging)))
        os.rename(staging, target)
    except OSError:
        if not (target / stamp).exists():
            raise  # failed, rather than lost a race to another build
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class FolderLock:
    """An exclusive `flock` on `<folder>/<name>`, held while the `with` block
    runs: a second process that asks for it gets a UsageError naming the
    process that holds it. The kernel drops the lock when its holder exits,
    however it exits, so a crash never leaves a folder locked. A folder that
    can't be written to (read-only, gone) is ResultsUnwritable."""

    def __init__(self, folder: Path, name: str, what: str):
        self.path = folder / name
        self.what = what  # what holding it means, for the message
        self._fd: int | None = None

    def __enter__(self) -> Self:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ResultsUnwritable(f"can't lock {self.path} for writing ({os_reason(error)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UsageError(f"{self.what} (process {holder} holds {self.path})") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
