"""Fine-tuning's learning rate searched at the smallest batch size and carried
to the others (tlbench/driver/carry.py): who waits for whom, what a record
releases, and a resumed run's finished source."""

from dataclasses import replace

from tlbench.driver.carry import RateCarrier
from tlbench.plan import BUDGETS, CarriedRate, ModuleSource, TrialSpec, predicted_flops


def _spec(mode="finetune", batch_size=8, backbone="resnet_v2_50", seed=0) -> TrialSpec:
    return TrialSpec(backbone, mode, batch_size, "digits", seed, BUDGETS["cpu"], ModuleSource("standin", "/m"))


def _record(spec: TrialSpec, status="ok", base=5e-5, **more) -> dict:
    return {**spec.record_fields(), "status": status, "base_learning_rate": base, **more}


GRID = [
    _spec("finetune", 16),
    _spec("finetune", 8),
    _spec("transfer", 16),
    _spec("transfer", 8),
    _spec("last_block", 16),
    _spec("last_block", 8),
    _spec("finetune", 16, seed=1),
    _spec("finetune", 8, seed=1),
    _spec("finetune", 16, backbone="mobilenet_v2_035_128"),
]


def test_the_smallest_batch_searches_and_the_larger_ones_wait_for_it():
    carrier = RateCarrier(GRID)
    ready = [s.trial_id for s in carrier.ready()]
    waiting = {"resnet_v2_50-finetune-bs16-digits-seed0", "resnet_v2_50-last_block-bs16-digits-seed0"}
    waiting.add("resnet_v2_50-finetune-bs16-digits-seed1")
    # Transfer has no learning rate to carry; a group of one batch size searches alone; the order is kept.
    assert ready == [s.trial_id for s in GRID if s.trial_id not in waiting]
    assert carrier.ready() == []  # handed out once
    assert [carrier.searched_rates(s) for s in GRID[:3]] == [1, 3, 0]


def test_a_sources_record_releases_its_group_with_its_rate_scaled_by_the_trial():
    carrier = RateCarrier(GRID)
    carrier.ready()
    (released,) = carrier.released(_record(GRID[1], base=5e-5))
    assert released == replace(GRID[0], carried_rate=CarriedRate(GRID[1].trial_id, 5e-5))
    assert released.record_fields()["learning_rate_carried_from"] == GRID[1].trial_id
    assert carrier.released(_record(GRID[1])) == []  # once
    assert carrier.released(_record(GRID[0])) == []  # nobody waits for a larger batch
    # Carried: fine-tuning trains one rate, and its predicted compute falls accordingly.
    sizes = {"train": 256, "val": 128, "test": 128}
    assert predicted_flops(released, 1.0, sizes, rates=1) < predicted_flops(GRID[0], 1.0, sizes)


def test_a_source_that_chose_no_rate_leaves_its_group_to_search():
    carrier = RateCarrier(GRID)
    assert carrier.released(_record(GRID[1], status="oom", base=None)) == [GRID[0]]
    assert carrier.released(_record(GRID[5], status="error", base=None)) == [GRID[4]]
    assert carrier.released(_record(GRID[7], base=None)) == [GRID[6]]  # a record without a rate


def test_a_resumed_run_carries_the_rate_of_a_source_that_finished_before():
    # Finished before: bs8 of seed 0 (ok) and of last_block (oom: done, not run again); seed 1's bs8 erred
    # and runs again.
    finished = [_record(GRID[1], base=1e-5), _record(GRID[5], status="oom", base=None)]
    finished.append(_record(GRID[7], status="error", base=None))
    remaining = [s for s in GRID if s.trial_id not in {GRID[1].trial_id, GRID[5].trial_id}]
    carrier = RateCarrier(remaining, finished)
    ready = {s.trial_id: s for s in carrier.ready()}
    assert ready[GRID[0].trial_id].carried_rate == CarriedRate(GRID[1].trial_id, 1e-5)
    assert ready[GRID[4].trial_id].carried_rate is None  # its source chose no rate: it searches
    assert GRID[7].trial_id in ready and GRID[6].trial_id not in ready  # waits for bs8's second run
    # A carried record is no source: it searched one rate only.
    carried = _record(GRID[1], learning_rate_carried_from="elsewhere")
    assert RateCarrier([GRID[0]], [carried]).ready() == [GRID[0]]
