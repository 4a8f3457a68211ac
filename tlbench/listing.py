"""`list`: the backbones tlbench knows, with each architecture's FLOPs per
image (counted in a fresh process: the command never imports TensorFlow),
the modes and the datasets."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tlbench import data, isolated
from tlbench.errors import UsageError
from tlbench.registry import BACKBONES, MODES


def print_listing(console: Console) -> None:
    with console.status("counting FLOPs per image (once; cached) ..."):
        try:
            flops, problem = isolated.call("tlbench.worker.entry:backbone_flops", [b.name for b in BACKBONES]), None
        except UsageError as error:
            flops, problem = {}, str(error)
    _print_backbones(BACKBONES, flops, problem, console)
    console.print(f"modes: {', '.join(MODES)}")
    console.print(
        f"datasets: '{data.EMBEDDED}' (embedded: scikit-learn's 1,797 handwritten digits, 10 classes), "
        "a folder with one sub-folder of images per class, or tfds:NAME (TensorFlow Datasets; "
        + ("installed)" if data.tfds_installed() else "needs tensorflow-datasets, not installed)")
    )


def _print_backbones(backbones, flops: dict, problem: str | None, console: Console) -> None:
    """The table of backbones, with FLOPs per image where counted."""
    table = Table(title="backbones (TF Hub image feature vectors)")
    for header in ("name", "input", "features", "GFLOPs/image", "default grid", "stand-in"):
        table.add_column(header, no_wrap=True, justify="right" if header.startswith("GFLOPs") else "left")
    table.add_column("TF Hub handle", overflow="fold")
    for b in backbones:
        gflops, size = (f"{flops[b.name] / 1e9:.3f}" if flops.get(b.name) else "?"), f"{b.image_size}x{b.image_size}"
        table.add_row(b.name, size, str(b.feature_dim), gflops, "yes" if b.in_default_grid else "", b.standin, b.handle)
    console.print(table)
    console.print(
        "[dim]GFLOPs/image: one forward pass at the input size, counted from the architecture's graph "
        "(a multiply-add is 2 FLOPs)[/]"
    )
    if problem:
        console.print(f"[yellow]FLOPs not counted: {escape(problem)}[/]")
