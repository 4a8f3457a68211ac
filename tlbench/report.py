"""report.md for a run folder, and the terminal table, from saved files only."""

from __future__ import annotations

from rich.console import Console

from tlbench.analysis import NOISE_RULE, accuracy_spreads, memory_slopes
from tlbench.columns import SPREAD_COLUMNS, format_bytes, markdown_table, rich_table, sort_key
from tlbench.results import REPORT_MD, RunContents, write_text_atomic


def render_markdown(run: RunContents) -> str:
    env, records = run.env, run.records
    versions = env.get("versions", {})
    cpu = env.get("cpu", {})
    lines = [f"# tlbench run {run.run_dir.name}", ""]
    lines += [
        "## Environment",
        "",
        (
            f"- host: {env.get('host', '?')}; CPU: {cpu.get('model', '?')} "
            f"({cpu.get('logical_cores', '?')} logical cores); GPUs: {', '.join(env.get('gpus') or []) or 'none'}"
        ),
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items() if version),
        f"- git commit: {(env.get('git') or {}).get('commit') or 'unknown'}",
        f"- command: `{env.get('command', '?')}`",
        f"- budget: {env.get('budget', {}).get('name', '?')}",
        "",
        "## Trials",
        "",
        markdown_table(records),
    ]
    standins = sorted({r["backbone"] for r in records if str(r.get("weights", "")).startswith("standin")})
    if standins:
        lines += [
            (
                f"**Stand-in weights** for {', '.join(standins)}: their accuracies come from randomly "
                "initialised networks of the same architecture, not from pretrained weights. They say "
                "nothing about which backbone transfers better; their speed and memory figures hold."
            ),
            "",
        ]
    lines += _accuracy_section(records)
    lines += _protocol_section(env, records)
    lines += _memory_section(records)
    failed = [r for r in sorted(records, key=sort_key) if r.get("status") != "ok"]
    if failed:
        lines += ["## Trials that did not finish", ""]
        lines += [f"- `{r['trial_id']}`: {r['status']}: {r.get('error') or 'no message'}" for r in failed]
        lines.append("")
    if run.warnings:
        lines += ["## Warnings while reading this run", ""] + [f"- {w}" for w in run.warnings] + [""]
    lines += [
        (
            "Accuracies are fractions; `val acc` chose the learning rate, `test acc` was measured once "
            "afterwards. Throughputs are the median images/s over timed windows after warm-up, "
            "[interquartile range] when there were several windows. `train MFU`: achieved training FLOP/s "
            "(FLOPs counted from the graph) over the device's peak from a matmul probe. `peak mem` is the "
            "peak during the timed training steps, `step mem` what they add to the memory in use before "
            "them, `pred act` the activation bytes the graph says a step keeps (see `memory_method` in "
            "trials.jsonl). `to acc s`: training seconds to the kept weights' validation accuracy. "
            "See results/README.md for every field."
        ),
        "",
    ]
    return "\n".join(lines)


def _accuracy_section(records) -> list[str]:
    spreads = accuracy_spreads(records)
    if not spreads:
        return []
    lines = ["## Accuracy over seeds", ""]
    if all(len(s.seeds) == 1 for s in spreads):
        return [
            *lines,
            (
                "One seed per configuration, so the spread of test accuracy is unknown and no difference "
                "in accuracy can be told from noise; run with `--seeds 3` or more."
            ),
            "",
        ]
    lines += [
        (
            "Test accuracy of each configuration over its seeds (mean ± sample standard deviation), best "
            f"mean first. The split is the same for every seed; a seed changes the head's initialisation "
            f"and the shuffling. Rule: {NOISE_RULE}."
        ),
        "",
        markdown_table([s.row for s in spreads], SPREAD_COLUMNS, ordered=True),
    ]
    return lines


def _protocol_section(env: dict, records) -> list[str]:
    protocol = (env.get("request") or {}).get("protocol") or {}
    budget = env.get("budget") or {}
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        return []
    first = ok[0]
    sizes = first.get("split_sizes") or {}
    rates = budget.get("learning_rates") or {}
    patience = budget.get("patience") or {}
    lines = [
        "## How accuracy was measured",
        "",
        (
            f"- Split: stratified, {sizes.get('train', '?')} train / {sizes.get('val', '?')} validation / "
            f"{sizes.get('test', '?')} test images, split seed "
            f"{protocol.get('split_seed', first.get('split_seed', '?'))}"
            + (f", training images capped at {protocol['train_size']}" if protocol.get("train_size") else "")
            + "; the test split was read once per trial, after every choice."
        ),
        (
            "- Search on validation (Adam): base learning rates "
            + "; ".join(f"{mode} {', '.join(f'{r:g}' for r in values)}" for mode, values in rates.items())
            + f", scaled to each batch size as {first.get('learning_rate_rule', '?')}; at most "
            f"{budget.get('transfer_epochs', '?')} (transfer) / {budget.get('finetune_epochs', '?')} (finetune) "
            "epochs, stopping after "
            + " / ".join(f"{epochs} ({mode})" for mode, epochs in patience.items())
            + " epochs without a lower validation loss; the weights of the lowest validation loss are kept."
        ),
        (
            "- Finetune starts from the linear probe's head (LP-FT) with BatchNorm in training mode, "
            f"momentum {protocol.get('batch_norm_momentum', first.get('batch_norm_momentum', '?'))}."
        ),
    ]
    kept_start = [r for r in ok if r.get("mode") == "finetune" and r.get("kept_epoch") == 0]
    if kept_start:
        finetunes = sum(1 for r in ok if r.get("mode") == "finetune")
        lines.append(
            f"- In {len(kept_start)} of {finetunes} finetune trials no fine-tuning epoch lowered the "
            "validation loss below the linear probe's start, so early stopping kept the probed start "
            "(`kept_epoch` 0): their accuracy is the linear probe's, their speed and memory fine-tuning's."
        )
    return [*lines, ""]


def _memory_section(records) -> list[str]:
    slopes = memory_slopes(records)
    if not slopes:
        return []
    lines = [
        "## Memory against batch size",
        "",
        (
            "Lines fitted through each backbone and mode's memory over its batch sizes. The slope of "
            "`step mem` (what a training step adds to the memory in use before it) is what one more image "
            "costs a step: the activation memory per image, fine-tuning's cost. Fine-tuning keeps every "
            "layer's activations for the gradient; transfer keeps only the feature vector, and what its "
            "step adds is the frozen forward pass's passing buffers. The prediction is the graph's count "
            "of kept activations. The slope of `peak mem` also holds the timed batches resident in memory."
        ),
        "",
        "| backbone | mode | device | batch sizes | step mem per image | predicted per image "
        + "| peak mem per image | peak mem fixed part |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for s in slopes:
        step = "-" if s.step_bytes_per_image is None else format_bytes(s.step_bytes_per_image)
        predicted = "-" if s.predicted_bytes_per_image is None else format_bytes(s.predicted_bytes_per_image)
        sizes = ", ".join(map(str, s.batch_sizes))
        lines.append(
            f"| {s.backbone} | {s.mode} | {s.device} | {sizes} | {step} | {predicted} | "
            f"{format_bytes(s.bytes_per_image)} | {format_bytes(s.intercept_bytes)} |"
        )
    return [*lines, ""]


def write_report(run: RunContents) -> None:
    write_text_atomic(run.run_dir / REPORT_MD, render_markdown(run))


def print_table(run: RunContents, console: Console) -> None:
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(rich_table(run.records, title=f"tlbench run {run.run_dir.name}"))
    spreads = accuracy_spreads(run.records)
    if any(len(s.seeds) > 1 for s in spreads):
        rows = [s.row for s in spreads]
        console.print(rich_table(rows, "Test accuracy over seeds", SPREAD_COLUMNS, ordered=True))
