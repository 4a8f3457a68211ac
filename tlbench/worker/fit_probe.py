"""The worker's side of `--batch-size max` (tlbench/batch_search.py), each
call in a fresh worker process so that a failed allocation leaves nothing
behind: `predict` gives the graph's largest batch, `probe` tries one batch
as a short trial on the device the trial will have (--device-memory
emulated as the trial emulates it)."""

from __future__ import annotations

import time
from dataclasses import replace

from tlbench import data
from tlbench.errors import described
from tlbench.plan import Budget, TrialSpec
from tlbench.worker.devices import configure_devices, is_out_of_memory
from tlbench.worker.trial import load, measure, model_costs


def predict(spec: TrialSpec, images: data.ImageSet) -> dict:
    """{"max_batch_size_predicted", "device_memory_bytes"} of the spec's backbone and mode."""
    configure_devices(spec.device_memory)
    setup = load(spec, images)
    costs = model_costs(setup, spec)
    return {
        "trial_id": spec.trial_id,
        **{key: costs[key] for key in ("max_batch_size_predicted", "device_memory_bytes")},
    }


def probe(spec: TrialSpec, images: data.ImageSet) -> dict:
    """Whether a trial of `spec` fits (a batch_search.FitProbe, with the
    trial id): the trial itself, every phase in its order on the same data,
    with one probe penalty and one epoch at one learning rate and the shortest timed
    passes. (Its steps alone, without what a trial holds before them, fit
    batches the trial then could not run.)"""
    started = time.perf_counter()
    result: dict = {"trial_id": spec.trial_id, "batch_size": spec.batch_size, "peak_memory_bytes": None, "error": None}
    fields: dict = {}
    try:
        configure_devices(spec.device_memory)
        measure(replace(spec, budget=probe_budget(spec.budget)), images, fields)
        result.update(status="ok", peak_memory_bytes=fields["peak_memory_bytes"])
    except Exception as failure:  # noqa: BLE001 - the probe's answer, whatever it is
        result.update(status="oom" if is_out_of_memory(failure) else "error", error=described(failure))
    result["seconds"] = time.perf_counter() - started
    return result


def probe_budget(budget: Budget) -> Budget:
    """The trial's budget (its data) with the least training and timing."""
    return replace(
        budget,
        finetune_epochs=1,
        probe_penalties=budget.probe_penalties[:1],
        learning_rates={stage: rates[:1] for stage, rates in budget.learning_rates.items()},
        warmup_steps=1,
        min_timed_steps=1,
        min_timed_seconds=0.0,
        timed_repeats=1,
    )
