"""A TF Hub cache folder as the prefetch tests see it: where a backbone's
handle is cached, what a failed install may leave, modules that are garbage
or were cut off mid-copy."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tlbench.registry import get_backbone

MOBILENET = get_backbone("mobilenet_v2_035_128")  # 128x128 -> 1280 features


def cached(cache: Path, backbone=MOBILENET) -> Path:
    """Where tensorflow_hub looks for `backbone`'s handle in `cache`."""
    return cache / hashlib.sha1(backbone.handle.encode()).hexdigest()


def leftovers(cache: Path) -> list[str]:
    """Staging or set-aside folders left in the cache."""
    return [p.name for p in cache.iterdir() if ".tmp-" in p.name or ".broken-" in p.name] if cache.exists() else []


def garbage_module(folder: Path, kind: str) -> Path:
    folder.mkdir()
    if kind == "empty saved_model.pb":
        (folder / "saved_model.pb").write_bytes(b"")
    else:  # random bytes in a folder that looks like a TF1 Hub module
        (folder / "saved_model.pb").write_bytes(os.urandom(4096))
        (folder / "tfhub_module.pb").write_bytes(b"\x08\x03")
    return folder


def corrupt(module: Path) -> None:
    """Cut the variables in half, as a copy cut off mid-file leaves them."""
    data = next((module / "variables").glob("variables.data-*"))
    os.truncate(data, data.stat().st_size // 2)
