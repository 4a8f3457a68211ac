"""An image folder, walked without blocking and checked against the decoder
the trials use, without TensorFlow.

Only folders are opened while walking (a FIFO named `x.png` would block a
reader); a file is a candidate when it is a regular file named as an image.
Whether TensorFlow decodes it as a trial does is asked of
`worker/decode_check.py` in a fresh process, and the verdicts are cached.
Everything left out is counted by its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import stat
from collections import Counter
from pathlib import Path

from tlbench.errors import UsageError, os_reason
from tlbench.files import cache_root, write_json_atomic

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}

# Why a file of an image folder is left out: the keys of `ImageSet.skipped`.
HIDDEN = "hidden"
NOT_AN_IMAGE_NAME = "not named .png/.jpg/.jpeg/.bmp/.gif"
NOT_REGULAR = "not a regular file"  # a FIFO, socket, device or broken link: opening it could block
INTO_DATASET = "a symlink into the dataset itself"  # it would count images twice, or in two classes
ALREADY_READ = "a folder already read through another link"
UNREADABLE = "not readable"
UNDECODABLE = "not decodable by TensorFlow"
EXAMPLES_PER_REASON = 3
# Decodes files exactly as a trial's pipeline does, in a fresh process: the
# driver never imports TensorFlow.
DECODE_CHECK = "tlbench.worker.decode_check:verdicts"


def printable(name: str) -> str:
    """A file or folder name as text any terminal and JSON file take: bytes
    that are not UTF-8 shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


class FolderScan:
    """Walks an image folder opening nothing but folders (a FIFO named
    `x.png` would block a reader): the candidate images, and what was
    skipped and why. Symlinks out of the dataset are followed; symlinks into
    it are skipped, as is a folder reached a second time."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = os.path.realpath(root).rstrip(os.sep) + os.sep
        self.skipped: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.read_folders: set[str] = set()

    def skip(self, reason: str, path: str) -> None:
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(printable(os.path.relpath(path, self.root)))

    def class_folders(self) -> list[os.DirEntry]:
        try:
            entries = _sorted_entries(self.root)
        except OSError as error:
            raise UsageError(
                f"dataset folder '{printable(str(self.root))}' can't be read ({os_reason(error)})"
            ) from None
        folders = []
        for entry in entries:
            if entry.name.startswith(".") or not _is_dir(entry):
                continue
            if self._into_dataset(entry):
                self.skip(INTO_DATASET, entry.path)
            else:
                folders.append(entry)
        return folders

    def files(self, folder: str):
        """(path, [size, mtime_ns]) of each candidate image under `folder`,
        in name order, depth first."""
        real = os.path.realpath(folder)
        if real in self.read_folders:
            self.skip(ALREADY_READ, folder)
            return
        self.read_folders.add(real)
        try:
            entries = _sorted_entries(folder)
        except OSError:
            self.skip(UNREADABLE, folder)
            return
        for entry in entries:
            is_dir = _is_dir(entry)
            if entry.name.startswith("."):
                if not is_dir:
                    self.skip(HIDDEN, entry.path)
            elif self._into_dataset(entry):
                self.skip(INTO_DATASET, entry.path)
            elif is_dir:
                yield from self.files(entry.path)
            elif os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES:
                self.skip(NOT_AN_IMAGE_NAME, entry.path)
            else:
                reason, stamp = _regular_file(entry)
                if reason:
                    self.skip(reason, entry.path)
                else:
                    yield entry.path, stamp

    def _into_dataset(self, entry: os.DirEntry) -> bool:
        return entry.is_symlink() and (os.path.realpath(entry.path) + os.sep).startswith(self.real_root)


def _sorted_entries(folder) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _regular_file(entry: os.DirEntry) -> tuple[str | None, list | None]:
    """(None, [size, mtime_ns]) for a regular file (through links), else
    (why it is skipped, None). A stat opens nothing."""
    try:
        info = entry.stat()
    except FileNotFoundError:  # a broken link
        return NOT_REGULAR, None
    except OSError:
        return UNREADABLE, None
    if not stat.S_ISREG(info.st_mode):
        return NOT_REGULAR, None
    return None, [info.st_size, info.st_mtime_ns]


def decode_verdicts(root: Path, stamps: dict[str, list]) -> dict[str, str | None]:
    """{path: None when TensorFlow decodes it as a trial does, else why it is
    skipped}. Decoding a whole folder takes a while, so verdicts are cached
    per folder by path, size and modification time (and TensorFlow's
    version): a second run or a resume decodes only files that changed."""
    cache = verdict_cache(root)
    cached = _read_json_object(cache)
    verdicts = {}
    for path, stamp in stamps.items():
        entry = cached.get(path)
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and entry[0] == stamp
            and isinstance(entry[1], (str, type(None)))
        ):
            verdicts[path] = entry[1]
    unknown = [path for path in stamps if path not in verdicts]
    if unknown:
        from tlbench import isolated

        verdicts.update(zip(unknown, isolated.call(DECODE_CHECK, unknown)))
        with contextlib.suppress(OSError):  # no cache then: the next run decodes again
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(cache, {path: [stamp, verdicts[path]] for path, stamp in stamps.items()})
    return verdicts


def verdict_cache(root: Path) -> Path:
    """The file of `root`'s verdicts: one per folder (rewritten whole, it
    forgets deleted files) and TensorFlow version (a new decoder decides anew)."""
    try:
        tensorflow = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = "unknown"
    folder = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]
    return cache_root() / "decode-checks" / f"{folder}-tensorflow-{tensorflow}.json"


def _read_json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
