"""`python -m tlbench prefetch`: modules into TFHUB_CACHE_DIR under their
handles, for nodes without internet (the copying and checking happen in a
fresh process: worker/weights.py)."""

from __future__ import annotations

import os

from rich.console import Console

from tlbench import isolated
from tlbench.errors import UsageError
from tlbench.registry import DEFAULT_BACKBONES, get_backbone


def prefetch(backbones, overrides: dict, console: Console) -> int:
    """`backbones` (None: the default grid's, or just those `overrides` name) prefetched; exit status 0."""
    if not os.environ.get("TFHUB_CACHE_DIR"):
        raise UsageError("set TFHUB_CACHE_DIR to the folder the nodes read modules from (e.g. shared storage)")
    for name in backbones or ():
        get_backbone(name)
    names = list(dict.fromkeys((*(backbones or ([] if overrides else DEFAULT_BACKBONES)), *overrides)))
    for name, path, how in isolated.call("tlbench.worker.entry:prefetch", names, overrides):
        # One line each, as written: paths may hold "[...]", which rich would read as markup.
        console.print(f"{name}: {path} ({how})", markup=False, highlight=False, soft_wrap=True)
    return 0
