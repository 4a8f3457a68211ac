"""The README's notebook example (`tlbench.run(...)`, `tlbench.load_run`)
runs as written, in a fresh process on a real local Ray."""

import re
import subprocess
import sys
from pathlib import Path

from records import read_records

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


def test_the_readmes_notebook_example_runs_as_written(tmp_path):
    """In a fresh process, as a notebook would: a real quick run on a real
    local Ray, its records returned and read back."""
    done = subprocess.run(
        [sys.executable, "-c", _readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "results").iterdir()
    assert f"{run_dir.name} exit status 0" in done.stdout
    trial_ids = [record["trial_id"] for record in read_records(run_dir)]
    assert len(trial_ids) == 2 and all(f"{trial_id} ok" in done.stdout for trial_id in trial_ids)
