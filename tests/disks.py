"""Real small filesystems for tests of disk faults: a tmpfs that fills up
(a real ENOSPC), the same remounted read-only (a real EROFS). Mounting needs
the right to mount (root in the sandbox and in CI); without it the test is
skipped."""

import contextlib
import os
import subprocess

import pytest


def _mount(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *map(str, args)], capture_output=True, check=False)


@contextlib.contextmanager
def small_disk(path, size="2m"):
    """A real, small filesystem (tmpfs) at `path`, so that writes meet a real
    ENOSPC."""
    path.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", path)
    if mounted.returncode != 0:
        pytest.skip(f"can't mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder):
    """Write until the filesystem is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def read_only(disk):
    """`disk` (a `small_disk`) remounted read-only while the block runs, so
    that writes meet a real EROFS; writable again afterwards."""
    remounted = _mount("-o", "remount,ro", disk)
    assert remounted.returncode == 0, remounted.stderr.decode()
    try:
        yield disk
    finally:
        _mount("-o", "remount,rw", disk)
