"""A pass timed while other processes spin on every core is unstable: a
machine loaded on purpose, one busy process per logical core."""

import os
import subprocess
import sys

from tlbench import stability
from tlbench.worker.measure import TimingPlan, time_until_stable


def test_a_pass_timed_while_other_processes_spin_is_unstable():
    """One busy loop per logical core: whatever the machine's speed, they take
    about half its CPU time from the timed steps."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        timing = time_until_stable(lambda: sum(range(20_000)), TimingPlan(1, 3, 0.5, repeats=2), batch_size=1)
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
    summary = timing.summary()
    assert summary["attempts"] == stability.TIMING_ATTEMPTS  # timed again, never stable
    assert summary["other_cpu_share_mean"] > stability.MAX_OTHER_CPU
    assert "of the CPU while timed (> 15 %)" in stability.timing_problem(summary)
