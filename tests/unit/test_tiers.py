"""The test tiers (tests/conftest.py): every test file sits in one, under a
name no other tier's file has (pytest imports each as a top-level module)."""

from collections import Counter

from conftest import TESTS, TIERS


def test_every_test_file_sits_in_a_tier_folder():
    stray = sorted(
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in TIERS
    )
    assert not stray, f"move each into tests/unit, tests/worker or tests/system (tests/conftest.py says which): {stray}"


def test_no_two_test_files_share_a_name():
    names = Counter(path.name for tier in TIERS for path in (TESTS / tier).rglob("test_*.py"))
    assert not [name for name, count in names.items() if count > 1]
