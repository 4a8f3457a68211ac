"""How a figure is written, each kind once, wherever it shows (the reports,
the live line): accuracies, images/s, bytes, percentages, changes, a mean
with its spread."""

from __future__ import annotations


def fraction(value) -> str:
    """An accuracy: a fraction with three digits."""
    return f"{value:.3f}"


def rate(value) -> str:
    """Images/s."""
    return f"{value:,.1f}"


def percent(value) -> str:
    """A share, such as MFU."""
    return f"{100 * value:.1f}%"


def signed_percent(value) -> str:
    """A relative change, with its sign."""
    return f"{value:+.1%}"


def seconds(value) -> str:
    return f"{value:.0f}"


def clock(value) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour."""
    minutes, secs = divmod(max(0, round(value)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def mean_and_std(mean, std) -> str:
    return fraction(mean) if std is None else f"{fraction(mean)} ± {fraction(std)}"


def format_bytes(value) -> str:
    """Bytes with a binary unit, at most 5 characters before it (1000 MiB and up as 0.98 GiB)."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size * 1000 / 1024:
            digits = 2 if value < size else 1
            return f"{sign}{value / size:.{digits}f} {unit}"
    return f"{sign}{value:.0f} B"


def mib(value) -> str:
    """Bytes as MiB, with the digits that tell small from large apart."""
    mebibytes = value / 2**20
    size = abs(mebibytes)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2 if size >= 0.1 else 3
    return f"{mebibytes:,.{digits}f}"


def points(delta: float) -> str:
    """A change of accuracy (a fraction) in percentage points, with its sign."""
    return f"{100 * delta:+.1f} points"


def times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2f}×"
