"""TFHUB_CACHE_DIR and the network: a TF Hub handle (or URL) resolved to a
complete local module folder, as tensorflow_hub resolves it, with a timeout
on the network and without a wait on a download lock that its process left
behind. A handle already complete in the cache is found without importing
tensorflow_hub, so that a run's preparation imports no TensorFlow for it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
from pathlib import Path

from tlbench.errors import UsageError

HUB_TIMEOUT_SECONDS = 60


def handle_folder(cache: str, handle: str) -> Path:
    """Where tensorflow_hub keeps `handle` in the cache folder `cache`: a folder
    named by the handle's SHA-1 (its `.lock` beside it while it downloads)."""
    return Path(cache) / hashlib.sha1(handle.encode("utf8")).hexdigest()


def check_hub_cache_dir() -> str:
    """TFHUB_CACHE_DIR, which `prefetch` fills; it must be set."""
    cache = os.environ.get("TFHUB_CACHE_DIR")
    if not cache:
        raise UsageError("set TFHUB_CACHE_DIR to the folder the nodes read modules from (e.g. shared storage)")
    return cache


def resolve(handle: str) -> str:
    """A TF Hub handle (or URL) as a complete local module folder, through
    TFHUB_CACHE_DIR or the network."""
    cached = _complete_in_hub_cache(handle)
    if cached is not None:
        return cached
    import tensorflow_hub as hub

    _clear_stale_lock(handle)
    with network_timeout():
        path = hub.resolve(handle)
    if not any(Path(path, name).exists() for name in ("saved_model.pb", "saved_model.pbtxt")):
        raise UsageError(
            f"the TF Hub cache folder {path} for {handle} is incomplete (no saved_model.pb): a download or copy "
            "was cut off; delete it and run 'python -m tlbench prefetch' again"
        )
    return path


def _complete_in_hub_cache(handle: str) -> str | None:
    """The folder tensorflow_hub resolves an http(s) handle to when
    TFHUB_CACHE_DIR holds it complete (`<sha1 of the handle>` with a
    saved_model.pb and no download lock, as `prefetch` installs it), found
    without importing tensorflow_hub (and TensorFlow); None when it would need
    tensorflow_hub (a gs:// path it reads in place, say)."""
    cache = os.environ.get("TFHUB_CACHE_DIR")
    uncompressed = os.environ.get("TFHUB_MODEL_LOAD_FORMAT", "").upper() == "UNCOMPRESSED"  # read from storage
    if not (cache and handle.startswith(("http://", "https://"))) or uncompressed:
        return None
    module = handle_folder(cache, handle)
    if module.with_name(module.name + ".lock").exists():
        return None  # a download may be under way: tensorflow_hub waits for it
    if any((module / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
        return str(module)
    return None


@contextlib.contextmanager
def network_timeout():
    """A network that hangs must not hang the command."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(HUB_TIMEOUT_SECONDS)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _clear_stale_lock(handle: str) -> None:
    """tensorflow_hub locks a handle's cache folder while it downloads
    (`<sha1>.lock`, holding `host.pid.uid`) and waits up to ten minutes for a
    lock that makes no progress. A lock left by a process of this host that
    is gone is removed at once, with its half-downloaded temporary folder."""
    import psutil

    cache = os.environ.get("TFHUB_CACHE_DIR")
    if not cache:
        return
    module = handle_folder(cache, handle)
    lock = module.with_name(module.name + ".lock")
    try:
        host, pid, uid = lock.read_text().rsplit(".", 2)
    except (OSError, ValueError):
        return  # no lock, or not one tensorflow_hub wrote
    if host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid)):
        shutil.rmtree(module.with_name(f"{module.name}.{uid}.tmp"), ignore_errors=True)
        lock.unlink(missing_ok=True)


def hub_cache_dir_label() -> str:
    return os.environ.get("TFHUB_CACHE_DIR") or "unset: a temporary folder"
