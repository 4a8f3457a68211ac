"""`python -m tlbench screen` end to end, on a real local Ray: three backbones
(stand-in weights, the embedded digits, --quick), one features pass each,
ranked; it ends with the `run` command for the best two. (All eight that
`list` knows take about 3 minutes here, most of it exporting their
stand-ins: too long for every CI run.)"""

from __future__ import annotations

import re

SCREENED = ("mobilenet_v2_035_128", "mobilenet_v2_050_160", "resnet_v2_50")


def test_screen_ranks_the_backbones_and_names_the_run_for_the_best_two(run_in_subprocess):
    done = run_in_subprocess("screen", "--backbone", *SCREENED, "--quick", "--weights", "standin", timeout=1800)
    assert done.returncode == 0, done.stderr + done.stdout
    rows = re.findall(
        r"^│ (\d+) │ (\S+)\s+│\s+([\d.]+) │\s+(-?[\d.]+) │\s+([\d.]+) │\s+([\d.]+ \w+) │", done.stdout, re.MULTILINE
    )
    assert sorted(name for _, name, *_ in rows) == sorted(SCREENED), done.stdout
    places = [int(place) for place, *_ in rows]
    assert places == list(range(1, len(SCREENED) + 1))
    ranked = [(float(probe), float(logme)) for _, _, probe, logme, *_ in rows]
    assert ranked == sorted(ranked, key=lambda pair: (-pair[0], -pair[1]))  # best first: probe, then LogME
    assert all(float(speed) > 0 for *_, speed, _ in rows)
    best = [name for _, name, *_ in rows[:2]]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith(f"next: python -m tlbench run --backbone {best[0]} {best[1]} --mode transfer")
    assert last.endswith("--weights standin")
