"""Each rule the reports judge by is defined once (reports/rules.py, or with
the record in record.py and its checker, schema.py), and a `report` command
analyses its run once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import tlbench
from tlbench import cli, stability
from tlbench.reports import analysis, rules

PACKAGE = Path(tlbench.__file__).parent
EXAMPLE = next((Path(__file__).resolve().parents[2] / "results").glob("*-example"))  # the checkout's, not site-packages

# A copy of a rule, as it was written before it had one home: (what, pattern).
STRAY = (
    ("an ok trial", re.compile(r"""status["']?\)?\s*[!=]=\s*["']ok["']|[!=]=\s*Status\.OK""")),
    ("a finite-number check", re.compile(r"math\.isfinite")),
    ("the seeds' noise rule", re.compile(r"2 \* standard_error|standard errors of the difference")),
    ("the rungs' noise rule", re.compile(r"0\.005|0\.5 points")),
    ("the chance level", re.compile(r"1 / classes|majority")),
    ("ranking on accuracy", re.compile(r"not \w+\.standin and not \w+\.at_chance")),
)
HOMES = {"tlbench/reports/rules.py", "tlbench/record.py", "tlbench/schema.py"}


# Modules that judge no record: the worker measures, checks.py checks the command line.
ELSEWHERE = ("tlbench/worker/", "tlbench/checks.py")


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        if name not in HOMES and not name.startswith(ELSEWHERE):
            yield name, path.read_text()


@pytest.mark.parametrize("what, pattern", STRAY, ids=[what for what, _ in STRAY])
def test_each_rule_is_written_in_its_home_only(what, pattern):
    lines = [(name, n, line) for name, text in _sources() for n, line in enumerate(text.splitlines(), 1)]
    strays = [f"{name}:{n}" for name, n, line in lines if pattern.search(line)]
    assert not strays, f"{what} written outside {sorted(HOMES)}: {strays}"


def test_the_reports_words_read_their_numbers_from_the_rules():
    assert f"{100 * rules.NOISE_POINTS:g} points" in rules.RUNGS_NOISE_RULE
    assert f"{100 * rules.NOISE_POINTS:g} points" in rules.ONE_SEED_RUNGS
    assert rules.CHANCE_MARK.strip() in rules.CHANCE_LEGEND


def test_a_report_command_analyses_its_run_once(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("env.json", "trials.jsonl"):
        shutil.copy(EXAMPLE / name, run_dir / name)
    calls = {"analyse": 0, "judged": 0}

    def counted(name, function):
        def call(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(analysis, "analyse", counted("analyse", analysis.analyse))
    monkeypatch.setattr(stability, "judged", counted("judged", stability.judged))
    assert cli.main(["report", str(run_dir), "--min-accuracy", "0.5"]) == 0
    assert calls == {"analyse": 1, "judged": 1}
    assert cli.main(["compare", str(run_dir), str(run_dir)]) == 0
    assert calls == {"analyse": 3, "judged": 3}  # once per run compared
