"""`--batch-size max` on the cluster: per backbone x mode, the graph's
prediction, then batches tried (tlbench/batch_search.py decides which), each
probe a Ray task in a fresh worker process (worker/fit_probe.py), the pairs'
searches side by side, one round of probes at a time. A search is handed to
`on_search` the moment it ends: the runner keeps it in env.json, so a
resumed run neither searches again nor runs another batch."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from tlbench import batch_search
from tlbench.batch_search import BatchSizeSearch, FitProbe, search_key
from tlbench.driver import cluster
from tlbench.formats import format_bytes


def search(plan, images, info: cluster.ClusterInfo, on_search: Callable, console: Console, work: tuple) -> None:
    """Search every pair of `plan` that has no recorded search, in parallel;
    `on_search(key, BatchSizeSearch)` as each ends. `work`: what predicts
    and what probes in a worker (runner.Workers' predict and probe)."""
    predict, probe = work
    keys = {search_key(b, m): (b, m) for b, m in plan.pairs if search_key(b, m) not in plan.batch_size_searches}
    if not keys:
        return
    console.print(f"[dim]--batch-size max: searching {len(keys)} backbone x mode pair(s) ...[/]")
    predictions = _round(plan, images, info, {key: (*pair, 1) for key, pair in keys.items()}, predict)
    searches: dict[str, BatchSizeSearch] = {}
    for key, prediction in predictions.items():
        if prediction.get("max_batch_size_predicted") is None:
            why = escape(str(prediction.get("error") or "the graph gave no prediction for this device"))
            console.print(f"  {escape(key)}: no prediction ({why}); the search starts at batch 1")
        searches[key] = {
            "device_memory_bytes": prediction.get("device_memory_bytes", plan.device_memory),
            "predicted": prediction.get("max_batch_size_predicted"),
            "probes": [],
        }
    active = set(keys)
    while active:
        tries = {}
        for key in sorted(active):
            batch, why = batch_search.next_batch(searches[key]["predicted"], searches[key]["probes"])
            if batch is None:
                searches[key].update(found=batch_search.found(searches[key]["probes"]), stopped=why)
                active.discard(key)
                _say_found(key, searches[key], console)
                on_search(key, searches[key])
            else:
                tries[key] = (*keys[key], batch)
        for key, answer in _round(plan, images, info, tries, probe).items():
            searches[key]["probes"].append(_probe(answer, tries[key][2]))
            _say_probe(key, searches[key]["probes"][-1], console)


def _round(plan, images, info, tries: dict, work) -> dict:
    """{key: the worker's answer} of `work` run once per (backbone, mode,
    batch) of `tries`, each in a fresh worker, all at once. A worker that
    died answers as run_trials says it: status "error"."""
    specs = {key: plan.spec(*pair_and_batch) for key, pair_and_batch in tries.items()}
    keys = {spec.trial_id: key for key, spec in specs.items()}
    answers: dict = {}
    cluster.run_trials(
        list(specs.values()), images, info, lambda answer: answers.update({keys[answer["trial_id"]]: answer}), work=work
    )
    return answers


def _probe(answer: dict, batch: int) -> FitProbe:
    return {
        "batch_size": batch,
        "status": answer.get("status", "error"),
        "peak_memory_bytes": answer.get("peak_memory_bytes"),
        "error": answer.get("error"),
        "seconds": answer.get("seconds"),
    }


def _say_probe(key: str, probe: FitProbe, console: Console) -> None:
    if probe["status"] == "ok":
        outcome = f"[green]fits[/] (peak {format_bytes(probe['peak_memory_bytes'])})"
    else:
        outcome = f"[red]{'does not fit' if probe['status'] == 'oom' else 'failed'}[/]: {escape(str(probe['error']))}"
    console.print(f"  {escape(key)} batch {probe['batch_size']}: {outcome}")


def _say_found(key: str, found: BatchSizeSearch, console: Console) -> None:
    device = format_bytes(found["device_memory_bytes"]) if found["device_memory_bytes"] else "its device"
    console.print(
        f"{escape(key)}: largest batch on {device}: [bold]{found['found'] or 'none'}[/] "
        f"(predicted {found['predicted'] or '-'}; {len(found['probes'])} probes; {escape(found['stopped'])})"
    )
