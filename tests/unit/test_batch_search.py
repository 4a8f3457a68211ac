"""`--batch-size max`: what the search tries next and where it stops, the
command line and env.json that carry it, the grid it makes and the report's
lines of it. (The probes themselves: tests/system/test_max_batch.py and
bench/test_max_batch.py.)"""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from records import trial
from reporting import render_markdown

from tlbench.batch_search import LARGEST, MAX_PROBES, TOLERANCE, found, next_batch, search_key
from tlbench.cli import build_parser
from tlbench.device_memory import GIB
from tlbench.driver.request import RunPlan, RunRequest
from tlbench.errors import UsageError
from tlbench.plan import ModuleSource


def _search(predicted, largest_fitting, fail_at=None):
    """The probes a search makes against a device where batches up to
    `largest_fitting` fit (and `fail_at`, if given, fails for another reason)."""
    probes = []
    while True:
        batch, why = next_batch(predicted, probes)
        if batch is None:
            return probes, why
        status = "error" if batch == fail_at else "ok" if batch <= largest_fitting else "oom"
        probes.append({"batch_size": batch, "status": status, "error": None if status == "ok" else "OOM"})


@given(st.one_of(st.none(), st.integers(1, 5000)), st.integers(0, 5000))
def test_the_search_brackets_the_largest_batch_within_its_tolerance(predicted, largest_fitting):
    probes, why = _search(predicted, largest_fitting)
    assert len(probes) <= MAX_PROBES and why
    batches = [p["batch_size"] for p in probes]
    assert len(set(batches)) == len(batches)  # no batch is tried twice
    assert batches[0] == (predicted or 1)  # it starts from the prediction
    best = found(probes)
    if largest_fitting == 0:
        assert best is None and why == "batch 1 does not fit"
    else:
        assert best is not None and best <= largest_fitting  # never a batch that did not fit
        assert largest_fitting <= max(best + 1, best * (1 + TOLERANCE)), (best, largest_fitting, batches)


def test_a_good_prediction_costs_few_probes():
    probes, why = _search(100, 100)
    assert [p["batch_size"] for p in probes] == [100, 125, 112, 106, 103] and why == "batch 100 fits and 103 does not"
    assert len(_search(100, 70)[0]) <= 7


def test_a_probe_that_fails_for_another_reason_ends_the_search_with_its_line():
    probes, why = _search(100, 500, fail_at=125)
    assert found(probes) == 100 and why.startswith("a probe failed for a reason other than memory")


def test_the_search_stops_at_the_largest_batch_tlbench_takes():
    probes, why = _search(LARGEST - 10, LARGEST * 2)
    assert found(probes) == LARGEST and "the largest tlbench takes" in why


def _plan(**request):
    request = RunRequest("digits", ("mobilenet_v2_035_128",), ("transfer", "finetune"), **request)
    return request.resolve(0, {"mobilenet_v2_035_128": ModuleSource("standin", "/m")}, {"mobilenet_v2_035_128": 1})


def test_batch_size_max_is_given_alone_on_the_command_line():
    parser = build_parser()
    args = parser.parse_args(["run", "--backbone", "mobilenet_v2_035_128", "--mode", "finetune", "--batch-size", "max"])
    request = RunRequest.from_args(args)
    assert request.max_batch_size and request.batch_sizes == ()
    mixed = parser.parse_args(["run", "--backbone", "mobilenet_v2_035_128", "--batch-size", "8", "max"])
    with pytest.raises(UsageError, match="give it alone"):
        RunRequest.from_args(mixed)
    with pytest.raises(UsageError, match="whole number, got 'most' \\(or max: the largest that fits"):
        parser.parse_args(["run", "--all", "--batch-size", "most"])


def test_the_grid_runs_each_pair_at_its_found_batch_and_resume_reads_the_searches_back():
    plan = _plan(max_batch_size=True, device_memory=2 * GIB)
    assert plan.batch_sizes == () and plan.batch_size_searches == {} and plan.grid() == []  # nothing searched yet
    search = {"device_memory_bytes": 2 * GIB, "predicted": 40, "found": 36, "probes": [], "stopped": "done"}
    nothing = {**search, "found": None, "stopped": "batch 1 does not fit"}
    searches = {search_key("mobilenet_v2_035_128", "finetune"): search}
    searches[search_key("mobilenet_v2_035_128", "transfer")] = nothing
    recorded = json.loads(json.dumps({**plan.as_json(), "batch_size_searches": searches}))  # as env.json holds it
    again = RunPlan.from_json(recorded, "env.json")
    grid = {spec.mode: spec for spec in again.grid()}
    assert grid["finetune"].batch_size == 36 and grid["transfer"].batch_size == 1  # nothing fit: it ends oom
    fields = grid["finetune"].record_fields()
    assert fields["max_batch_size_found"] == 36 and fields["batch_size_search"] == search
    assert "batch_size_search" not in _plan(batch_sizes=(8,)).grid()[0].record_fields()
    bad = {**recorded, "batch_size_searches": {"m/finetune": {**search, "found": 0}}}
    with pytest.raises(UsageError, match="env.json"):
        RunPlan.from_json(bad, "env.json")


def test_the_report_shows_each_search_found_against_predicted_with_its_probes():
    search = {
        "device_memory_bytes": 2 * GIB,
        "predicted": 40,
        "found": 36,
        "probes": [{"batch_size": 40, "status": "oom"}, {"batch_size": 32, "status": "ok"}],
        "stopped": "batch 36 fits and 37 does not",
    }
    lines = [[2**20, 0]]
    common = {"predicted_train_step_peak_lines": lines, "weight_bytes": 0, "optimizer_slot_bytes": 0}
    records = [
        trial("mobilenet_v2_035_128", "finetune", 36, 0, image_size=128, batch_size_search=search, **common),
        trial("mobilenet_v2_035_128", "transfer", 16, 0, image_size=128, **common),
    ]
    report = render_markdown(records)
    section = report.split("## The largest batch that fits a device")[1].split("\n## ")[0]
    assert "Found by trying (--batch-size max)" in section
    assert (
        "- `mobilenet_v2_035_128` finetune on 2.0 GiB: found 36, predicted 40, 0.90x the prediction; "
        "probes: 40 out of memory, 32 fits (batch 36 fits and 37 does not)"
    ) in section
    assert "Found by trying" not in render_markdown(records[1:])
