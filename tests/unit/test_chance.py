"""Chance level: what guessing scores on a test split, and when an accuracy
is within the noise of it."""

import math

import pytest

from tlbench.reports import rules as chance
from tlbench.reports.configs import configurations

DIGITS = {"num_classes": 10, "split_sizes": {"test": 128}, "class_counts": {"test": [13] * 8 + [12] * 2}}


def test_guessing_scores_the_larger_of_one_over_the_classes_and_the_largest_class_share():
    digits = chance.guessing(DIGITS)
    assert digits.rate == 13 / 128 and digits.images == 128  # the largest class beats 1/10
    assert digits.ceiling == pytest.approx(13 / 128 + 2 * math.sqrt(13 / 128 * 115 / 128 / 128))
    assert digits.ceiling == pytest.approx(0.1550, abs=1e-4)
    lopsided = {"num_classes": 2, "split_sizes": {"test": 100}, "class_counts": {"test": [90, 10]}}
    assert chance.guessing(lopsided).rate == 0.9  # always "the first class" scores 0.9
    uniform = {"num_classes": 4, "split_sizes": {"test": 40}, "class_counts": {"test": [10] * 4}}
    assert chance.guessing(uniform).rate == 0.25


@pytest.mark.parametrize(
    "row, accuracy, at_chance",
    [
        (DIGITS, 13 / 128, True),  # the MobileNet stand-ins of a run --all
        (DIGITS, 0.154, True),  # within two standard errors
        (DIGITS, 0.156, False),
        (DIGITS, 0.695, False),
        ({"num_classes": 2, "split_sizes": {"test": 100}, "class_counts": {"test": [90, 10]}}, 0.95, True),
        ({"num_classes": 2, "split_sizes": {"test": 100}, "class_counts": {"test": [90, 10]}}, 0.97, False),
        # A small test split: far more noise, so a higher accuracy is still guessing.
        ({"num_classes": 2, "split_sizes": {"test": 10}, "class_counts": {"test": [5, 5]}}, 0.8, True),
        ({"num_classes": 2, "split_sizes": {"test": 10}, "class_counts": {"test": [5, 5]}}, 0.9, False),
    ],
)
def test_an_accuracy_within_two_standard_errors_of_guessing_is_at_chance_level(row, accuracy, at_chance):
    assert chance.at_chance(row, accuracy) is at_chance


@pytest.mark.parametrize(
    "row",
    [
        {},  # a record of an earlier version
        {"num_classes": 10},  # no test split size
        {"num_classes": "ten", "split_sizes": {"test": "many"}, "class_counts": {"test": "lots"}},
        {"num_classes": True, "split_sizes": [], "class_counts": {"test": [1, -3, None]}},
        {"num_classes": 0, "split_sizes": {"test": 0}, "class_counts": {"test": []}},
        {"num_classes": 10**400, "split_sizes": {"test": 10**400}},
    ],
)
def test_records_that_do_not_say_have_no_chance_level(row):
    assert chance.guessing(row) is None
    assert chance.at_chance(row, 0.1) is False


def test_no_accuracy_is_never_at_chance_level():
    assert not chance.at_chance(DIGITS, None) and not chance.at_chance(DIGITS, "0.1")
    assert not chance.at_chance(DIGITS, float("nan"))


def test_a_configuration_is_at_chance_by_its_mean_over_seeds_and_not_ranked_against_the_best():
    def trial(backbone, seed, accuracy):
        return {"backbone": backbone, "mode": "transfer", "batch_size": 16, "seed": seed, "status": "ok",
                "weights": "tfhub:x", "test_accuracy": accuracy, **DIGITS}  # fmt: skip

    records = [
        trial("resnet", 0, 0.90),
        trial("resnet", 1, 0.92),
        trial("mobilenet", 0, 0.10),
        trial("mobilenet", 1, 0.17),
    ]
    resnet, mobilenet = configurations(records)
    assert not resnet.at_chance and resnet.verdict == "best"
    assert mobilenet.test_mean == pytest.approx(0.135) and mobilenet.at_chance
    assert mobilenet.verdict == "at chance level"
    assert mobilenet.guessing == chance.guessing(DIGITS)
