"""Fine-tuning's learning rate, searched at one batch size and carried to the others.

Trials that differ only in batch size (the same backbone, mode, seed and
frozen inputs) would each search the same fine-tuning learning rates, whose
epochs are most of a grid's time. The smallest batch size searches them (its
record's `lr_search`); the larger ones wait for its record and then train
its chosen base learning rate alone, scaled to their batch size by the
square-root rule (plan.scaled_learning_rate), as the starting point of
their own training: early stopping and the probed start still apply. A
source that ends without a chosen rate (oom, error) leaves its dependents to
search for themselves. Each record says which (`learning_rate_carried_from`).

The cost: a dependent starts after its source ends. On a CPU node trials run
one at a time anyway; on a GPU cluster the larger batches wait.
"""

from __future__ import annotations

from dataclasses import replace

from tlbench.plan import CarriedRate, TrialSpec
from tlbench.record import ended_ok
from tlbench.registry import trains_backbone


def carry_key(spec_or_record) -> tuple | None:
    """What trials of a run must share to share a fine-tuning learning rate
    (the rest of what they depend on is the run's): None, nothing to carry."""
    get = spec_or_record.get if isinstance(spec_or_record, dict) else lambda name: getattr(spec_or_record, name)
    if not trains_backbone(get("mode")) or get("batch_size_search") is not None:
        return None
    return (get("backbone"), get("mode"), get("seed"))


class RateCarrier:
    """Which of a run's trials search and which wait for a source's rate;
    `earlier`: the records of its trials that finished before (--resume),
    whose rates carry too."""

    def __init__(self, specs, earlier=()):
        groups: dict = {}
        for spec in specs:
            if (key := carry_key(spec)) is not None:
                groups.setdefault(key, []).append(spec)
        sources = {}  # key: the smallest batch's finished record
        for record in earlier:
            key, batch = carry_key(record), record.get("batch_size")
            if key in groups and isinstance(batch, int) and (key not in sources or batch < sources[key]["batch_size"]):
                sources[key] = record
        self._waiting: dict[str, list[TrialSpec]] = {}  # a source's trial id: the trials that wait for it
        carried = {}
        for key, members in groups.items():
            members = sorted(members, key=lambda s: s.batch_size)
            source = sources.get(key)
            if source is not None and source["batch_size"] < members[0].batch_size:  # it searched already
                carried.update({s.trial_id: s for s in self._with_rate(members, source)})
            elif len({s.batch_size for s in members}) > 1:
                self._waiting[members[0].trial_id] = [s for s in members if s.batch_size > members[0].batch_size]
        held = {s.trial_id for dependents in self._waiting.values() for s in dependents}
        self._ready = [carried.get(s.trial_id, s) for s in specs if s.trial_id not in held]

    def ready(self) -> list[TrialSpec]:
        """The trials to submit now, in the order given."""
        ready, self._ready = self._ready, []
        return ready

    def released(self, record: dict) -> list[TrialSpec]:
        """The trials that waited for `record`'s trial: with its rate, or to
        search for themselves if it chose none."""
        return self._with_rate(self._waiting.pop(record.get("trial_id"), []), record)

    def searched_rates(self, spec: TrialSpec) -> int:
        """How many fine-tuning learning rates `spec` will train (estimates)."""
        if not trains_backbone(spec.mode):
            return 0
        if spec.carried_rate is not None or any(spec in waiting for waiting in self._waiting.values()):
            return 1
        return len(spec.budget.learning_rates["finetune"])

    @staticmethod
    def _with_rate(specs: list, source: dict) -> list:
        if not ended_ok(source) or source.get("base_learning_rate") is None:
            return specs
        if source.get("learning_rate_carried_from"):  # carried itself: no search to carry
            return specs
        rate = CarriedRate(source["trial_id"], float(source["base_learning_rate"]))
        return [replace(spec, carried_rate=rate) for spec in specs]
