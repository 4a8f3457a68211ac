"""report.md for a run folder, and the terminal table, from saved files only."""

from __future__ import annotations

from rich.console import Console

from tlbench.analysis import memory_slopes
from tlbench.columns import format_bytes, markdown_table, rich_table, sort_key
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
            "trials.jsonl). `to acc s`: training seconds to the final validation accuracy. "
            "See results/README.md for every field."
        ),
        "",
    ]
    return "\n".join(lines)


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
