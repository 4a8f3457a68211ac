"""Recommendation and constraints on hand-made records with known answers."""

import pytest

from records import DECIDE_RECORDS, MIB, measured, seeds

from tlbench.checks import size as parse_bytes
from tlbench.errors import UsageError
from reporting import choose, recommend

from tlbench.reports.decide import Constraints, pareto_front

# ResNet finetune and transfer at batch 32: 0.96 and 0.94 over 3 seeds, 3 and 8 images/s, 4.9 and 2.5 GiB;
# MobileNet transfer and finetune: 0.91 and 0.90, 560 and 90 images/s, 300 and 900 MiB (dominated);
# ResNet finetune at batch 64 out of memory (records.py).
RECORDS = DECIDE_RECORDS


def test_the_recommendation_names_the_best_on_each_criterion_and_the_pareto_front():
    advice = recommend(RECORDS)
    assert advice.most_accurate.name == "resnet finetune batch 32"
    assert advice.fastest.name == "mobilenet transfer batch 32"
    assert advice.least_memory.name == "mobilenet transfer batch 32"
    assert [c.name for c in advice.pareto] == [
        "resnet finetune batch 32",
        "resnet transfer batch 32",
        "mobilenet transfer batch 32",
    ]
    resnet, mobilenet = advice.advice
    assert resnet.startswith("Choose resnet (finetune, batch 32) when accuracy comes first:")
    assert "more accurate than mobilenet (0.960 vs 0.910 test accuracy, beyond the seeds' noise)" in resnet
    assert mobilenet.startswith("Choose mobilenet (transfer, batch 32) when training speed counts or memory is tight")
    assert "trains 186.7x as fast as resnet (560.0 vs 3.0 images/s)" in mobilenet
    assert "300.0 MiB of peak memory against 4.9 GiB" in mobilenet
    assert advice.warnings == []  # pretrained weights, three seeds, a clear winner


def test_the_recommendation_warns_about_stand_ins_one_seed_and_noise():
    records = [
        *seeds("resnet", "transfer", 32, (0.90, 0.93, 0.96), 8.0, 2600 * MIB, weights="standin:random-init"),
        *seeds("mobilenet", "transfer", 32, (0.89, 0.92, 0.95), 560.0, 300 * MIB),
        measured("mobilenet", "finetune", 32, 0, 0.5, 90.0, 900 * MIB),
    ]
    advice = recommend(records)
    assert any("stand-in weights" in w and "resnet" in w for w in advice.warnings)
    assert any("one seed" in w for w in advice.warnings)
    assert advice.most_accurate.name == "mobilenet transfer batch 32"  # the stand-in's accuracy doesn't rank
    assert not any("within noise of the most accurate" in w for w in advice.warnings)
    resnet = next(s for s in advice.advice if s.startswith("resnet ("))
    # Slower and heavier; its accuracy is a stand-in's: no accuracy is compared.
    assert resnet == (
        "resnet (transfer, batch 32) wins on nothing measured here against mobilenet: "
        "its accuracy (from stand-in weights) is not compared with mobilenet's."
    )
    tied = recommend([{**r, "weights": "tfhub:x"} for r in records])
    assert any("within noise of the most accurate: mobilenet transfer batch 32" in w for w in tied.warnings)


def test_pareto_front_drops_dominated_configurations():
    advice = recommend(RECORDS)
    front = pareto_front([advice.most_accurate, advice.fastest])
    assert len(front) == 2


@pytest.mark.parametrize(
    "constraints, best, out",
    [
        (Constraints(memory_budget=4 * 2**30), "resnet transfer batch 32", {"resnet finetune batch 32"}),
        (Constraints(min_throughput=50), "mobilenet transfer batch 32", {"resnet finetune batch 32"}),
        (Constraints(min_accuracy=0.935), "resnet finetune batch 32", {"mobilenet transfer batch 32"}),
        (Constraints(memory_budget=1 * 2**30, min_accuracy=0.95), None, {"mobilenet transfer batch 32"}),
        (
            Constraints(min_throughput=1000, throughput="infer"),
            "mobilenet transfer batch 32",
            {"resnet transfer batch 32"},
        ),
    ],
)
def test_constraints_pick_the_most_accurate_that_fits_and_say_why_others_are_out(constraints, best, out):
    choice = choose(RECORDS, constraints)
    assert (choice.best.name if choice.best else None) == best
    ruled_out = {c.name: reasons for c, reasons in choice.ruled_out}
    assert out <= set(ruled_out)
    assert ruled_out["resnet finetune batch 64"] == ["no result: every seed ended oom"]


def test_reasons_give_the_measured_figure_and_the_limit():
    choice = choose(RECORDS, Constraints(memory_budget=4 * 2**30, min_throughput=5, min_accuracy=0.95))
    reasons = {c.name: r for c, r in choice.ruled_out}
    assert reasons["resnet finetune batch 32"] == ["peak memory 4.9 GiB > 4.0 GiB", "train throughput 3.0 < 5 images/s"]
    assert reasons["mobilenet transfer batch 32"] == ["test accuracy 0.910 < 0.95"]


@pytest.mark.parametrize(
    "text, value",
    [("4GiB", 4 * 2**30), ("512 MiB", 512 * 2**20), ("8GB", 8e9), ("1.5g", 1.5e9), ("4096", 4096.0)],
)
def test_memory_sizes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["4 parsecs", "-1GiB", "0", "GiB", ""])
def test_bad_memory_sizes_are_usage_errors(text):
    with pytest.raises(UsageError, match="memory budget must be"):
        parse_bytes(text)


# ---------------------------------------------- accuracy that can't rank

# The digits' test split as tlbench records it: 128 images of 10 classes.
DIGITS_TEST = {
    "num_classes": 10,
    "split_sizes": {"train": 256, "val": 128, "test": 128},
    "class_counts": {"test": [13] * 8 + [12] * 2},
}
CHANCE = 13 / 128  # what always answering the largest class scores


def _digits(records, **fields):
    return [{**r, **DIGITS_TEST, **fields} for r in records]


def _grid(weights, resnet, mobilenet):
    """ResNet slow and heavy at `resnet` accuracy, MobileNet fast and light at `mobilenet`."""
    return _digits(
        [
            *seeds("resnet", "transfer", 16, resnet, 20.4, 660 * MIB, weights=weights),
            *seeds("resnet", "finetune", 16, [a + 0.01 for a in resnet], 7.1, 1900 * MIB, weights=weights),
            *seeds("mobilenet", "transfer", 16, mobilenet, 509.6, 77 * MIB, weights=weights),
            *seeds("mobilenet", "last_block", 16, mobilenet, 585.7, 79 * MIB, weights=weights),
        ]
    )


def _said(advice) -> str:
    return "\n".join([*advice.advice, *advice.warnings, *advice.headlines()])


def test_a_stand_in_run_never_calls_one_backbone_more_accurate_and_advises_on_speed_and_memory():
    advice = recommend(_grid("standin:random-init", (0.69, 0.70, 0.71), (CHANCE,) * 3))
    said = _said(advice)
    assert "is more accurate than" not in said and "accuracy comes first" not in said
    assert advice.most_accurate is None and advice.pareto == []
    assert advice.advice[0] == (
        "Accuracy decides nothing here: the accuracies of mobilenet, resnet come from stand-in weights (random "
        "initialisation), so no configuration is called more accurate than another. What follows compares speed "
        "and memory only."
    )
    # Each backbone by its fastest configuration, on speed and memory.
    assert advice.advice[1].startswith("Choose mobilenet (last_block, batch 16) when training speed counts or memory")
    assert advice.advice[2] == "resnet (transfer, batch 16) wins on nothing measured here against mobilenet."
    assert advice.fastest.name == "mobilenet last_block batch 16" and advice.least_memory.name.startswith("mobilenet")
    assert any(
        w.startswith("The test accuracy of every configuration of mobilenet is at chance level (0.102;")
        for w in advice.warnings
    )
    assert "**Most accurate**: not ranked: every accuracy here comes from stand-in weights" in said
    assert "Pareto front" not in said


def test_a_backbone_at_chance_with_pretrained_weights_is_not_ranked_on_accuracy():
    advice = recommend(_grid("tfhub:x", (0.90, 0.91, 0.92), (CHANCE, CHANCE, 0.11)))
    resnet, mobilenet = (next(s for s in advice.advice if f"{name} (" in s) for name in ("resnet", "mobilenet"))
    assert "is more accurate" not in _said(advice)
    assert resnet == (
        "resnet (finetune, batch 16) wins on nothing measured here against mobilenet: its accuracy is not "
        "compared with mobilenet's (at chance level)."
    )
    assert mobilenet.startswith("Choose mobilenet (last_block, batch 16) when training speed counts or memory is tight")
    (chance,) = [w for w in advice.warnings if "chance level" in w]
    assert chance.startswith("The test accuracy of every configuration of mobilenet is at chance level (0.104;")
    assert "guessing scores 0.102 on these 128 test images, up to 0.155 within noise" in chance
    assert "points to a problem (the weights, the learning rates, the data), not to a worse backbone" in chance
    # ResNet's own configurations still rank among themselves.
    assert advice.most_accurate.name == "resnet finetune batch 16"
    assert [c.backbone for c in advice.pareto] == ["resnet", "resnet"]


def test_accuracies_above_chance_with_pretrained_weights_still_rank():
    advice = recommend(_grid("tfhub:x", (0.95, 0.96, 0.97), (0.90, 0.91, 0.92)))
    resnet = next(s for s in advice.advice if "resnet (" in s)
    assert resnet.startswith("Choose resnet (finetune, batch 16) when accuracy comes first: it is more accurate than ")
    assert "mobilenet (0.970 vs 0.910 test accuracy, beyond the seeds' noise)" in resnet
    assert not any("chance" in w for w in advice.warnings) and not advice.advice[0].startswith("Accuracy decides")
    assert advice.most_accurate.name == "resnet finetune batch 16"


def test_constraints_choose_the_fastest_that_fits_when_no_accuracy_ranks():
    records = _grid("standin:random-init", (0.69, 0.70, 0.71), (CHANCE,) * 3)
    choice = choose(records, Constraints(memory_budget=1 * 2**30))
    assert choice.best.name == "mobilenet last_block batch 16"  # not resnet transfer's 0.700
    assert choice.basis.startswith("the fastest to train that fits: the accuracies of those that fit rank nothing")
    mixed = records + _digits(seeds("mobilenet", "finetune", 16, (0.80, 0.81, 0.82), 90.0, 300 * MIB))
    choice = choose(mixed, Constraints(memory_budget=1 * 2**30))
    assert choice.best.name == "mobilenet finetune batch 16"  # pretrained and above chance: ranks first
    assert choice.basis == "the most accurate that fits"
