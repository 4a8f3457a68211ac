"""SIGINT and SIGTERM stop a command the same way: `kill`, a batch
scheduler or a container's stop is an interruption like Ctrl-C (finished
records kept, Ray shut down, one line, exit 128 + the signal), and a block
that must be done whole (a record written and counted) finishes first."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler, a container's stop): an interruption like Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Stops:
    """What `stop_signals` yields: the signal that interrupted the command.
    Ray turns an exception raised by a handler during its calls into a plain
    KeyboardInterrupt, so the signal is kept here rather than read from the
    exception."""

    signum: int | None = None

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, the shell's convention: 130 for Ctrl-C
        (and any KeyboardInterrupt), 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGINT)


_active: list[Stops] = []  # the `stop_signals` blocks in force, outermost first
_held: list[int] | None = None  # stop signals that arrived inside `interrupts_held`


def on_stop_signal(signum, frame) -> None:
    if _held is not None:
        _held.append(signum)
    else:
        raise_stop(signum)


def raise_stop(signum: int):
    for stops in _active:
        stops.signum = signum
    raise Terminated(signum) if signum == signal.SIGTERM else KeyboardInterrupt


def _takes_over(signum: int, handler) -> bool:
    """Ctrl-C only where it raises KeyboardInterrupt as Python has it; SIGTERM
    unless it is ignored."""
    if signum == signal.SIGINT:
        return handler in (signal.default_int_handler, on_stop_signal)
    return handler != signal.SIG_IGN


@contextlib.contextmanager
def stop_signals():
    """For the duration, SIGTERM interrupts as Ctrl-C does (`Terminated`, a
    KeyboardInterrupt), so either stops a command the same way: finished
    records kept, Ray shut down, one line. Both wait while `interrupts_held`.
    Yields a `Stops` that says which signal it was. The handlers before are
    put back after (a notebook's, a test process's). Only the main thread
    handles signals: elsewhere nothing changes."""
    stops = Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    taken = [signum for signum, handler in before.items() if _takes_over(signum, handler)]
    for signum in taken:
        signal.signal(signum, on_stop_signal)
    _active.append(stops)
    try:
        yield stops
    finally:
        _active.remove(stops)
        for signum in taken:  # None: a handler set outside Python, which can't be put back
            signal.signal(signum, signal.SIG_DFL if before[signum] is None else before[signum])


@contextlib.contextmanager
def interrupts_held():
    """Under `stop_signals`, Ctrl-C and SIGTERM wait until the block is done,
    then interrupt: what it does is done whole (a record written and counted)."""
    global _held
    outer, _held = _held, []
    try:
        yield
    finally:
        arrived, _held = _held, outer
    if arrived:  # the block ended normally (an error on its way out goes on as it is)
        if outer is not None:
            outer.extend(arrived)
        else:
            raise_stop(arrived[0])
