"""The terminal's tables read back: the one wide table `report` prints to a
file or a pipe, or with --wide."""

from __future__ import annotations

from tlbench.reports import columns


def key(trial: dict) -> tuple:
    """A trial's row, by the words of its first cells."""
    return trial["backbone"], trial["mode"], str(trial["batch_size"]), str(trial["seed"])


def cells(line: str, rule: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip(rule).split(rule)]


def assert_one_wide_table(text: str, trials: list[dict]) -> None:
    """The trials' table with every column, a row per line, no cell cut."""
    every = columns.trial_columns(trials)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("┃ backbone"))
    assert cells(header, "┃") == [c.header for c in every]
    rows = [cells(line, "│") for line in lines if line.startswith("│ ")]
    named = len([c for c in every if c.header in columns.TRIAL_KEYS])  # with the seed when there are several
    rows = {tuple(row[:named]): row for row in rows if len(row) == len(every)}
    for trial in trials:
        assert rows[key(trial)[:named]] == [c.cell(trial) for c in every]
    assert "…" not in text
