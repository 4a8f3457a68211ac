"""The real command in a process of its own: its exit status and its one
line on stderr, and SIGTERM outside a run."""

import subprocess
import sys

from tlbench import results


def test_exit_status_and_stderr_of_the_real_command(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tlbench", "run", "--backbone", "resnet50"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tlbench: error: unknown backbone 'resnet50'")
    assert "Traceback" not in done.stderr


# `report` stopped by SIGTERM as `kill` sends it, at a known point: as it
# starts reading the run folder.
TERMINATED_IN_REPORT = """
import os, signal, sys
from tlbench import results
from tlbench.cli import main

read_run = results.read_run

def read_run_after_sigterm(run_dir):
    os.kill(os.getpid(), signal.SIGTERM)
    return read_run(run_dir)

results.read_run = read_run_after_sigterm
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_no_run_is_going_exits_143_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / results.ENV).write_text("{}")
    done = subprocess.run(
        [sys.executable, "-c", TERMINATED_IN_REPORT, "report", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr == "tlbench: terminated\n"
    assert not (run_dir / results.REPORT_MD).exists()  # stopped before it wrote anything
