"""`--batch-size max` against a bare loop's bisection: for MobileNet V2
0.35/128 and ResNet V2 50 in transfer, last_block and finetune, the batch
`python -m tlbench run --batch-size max --device-memory 2GiB` finds, and the
batch `bench/bare_fit.py` (no tlbench code: hub.KerasLayer + Dense, Adam,
each probe a fresh process with TensorFlow's CPU allocator limited to the
same 2 GiB) finds by bisection. Asked: within 15 % of each other, for every
pair. Both are printed, with tlbench's prediction and probes, and kept in
the benchmark's extra_info.

Untimed (CI's --benchmark-disable pass): one probe of the bare loop each way
(a batch that fits and one that doesn't), to show it runs; tlbench's side is
tests/worker/test_fit_probe.py and tests/system/test_max_batch.py, and a
search takes minutes (a probe is a short trial).

    pytest bench/test_max_batch.py --benchmark-only -s
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tlbench.registry import get_backbone

DEVICE_MIB = 2048
UNTIMED_DEVICE_MIB = 192  # MobileNet V2 0.35/128 transfer: batch 2 fits; 4096 (its images alone 768 MiB) does not
BACKBONES = ("mobilenet_v2_035_128", "resnet_v2_50")
MODES = ("transfer", "last_block", "finetune")
MAX_DIFFERENCE = 0.15
BARE_FIT = Path(__file__).with_name("bare_fit.py")


def _tlbench(out: Path, backbones, modes, device_mib: int) -> dict:
    """{(backbone, mode): record} of one `run --batch-size max --quick`."""
    argv = [sys.executable, "-m", "tlbench", "run", "--backbone", *backbones, "--mode", *modes]
    argv += ["--batch-size", "max", "--device-memory", f"{device_mib}MiB", "--quick", "--weights", "standin"]
    done = subprocess.run([*argv, "--out", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = out.iterdir()
    records = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    return {(r["backbone"], r["mode"]): r for r in records}


def _bare(backbone: str, mode: str, module: str, device_mib: int, start: int) -> dict:
    size = get_backbone(backbone).image_size
    trained = {"transfer": "none", "finetune": "all"}.get(mode) or get_backbone(backbone).ladder.pattern(mode)
    argv = [sys.executable, str(BARE_FIT), module, str(size), trained, str(device_mib), str(start)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("batch, fits", [(2, True), (4096, False)], ids=["fits", "out-of-memory"])
def test_the_bare_loop_probes_fit_and_run_out_of_memory(benchmark, batch, fits):
    """Untimed only: the bare loop's probe, both ways (in transfer, the cheapest to build)."""
    from tlbench.worker.weights import export_standin

    if benchmark.enabled:
        pytest.skip("timed: test_the_batch_found_matches_a_bare_loops_bisection runs whole searches")
    module, size = str(export_standin(get_backbone(BACKBONES[0]))), get_backbone(BACKBONES[0]).image_size
    probe = lambda: _bare_fits(module, size, "none", UNTIMED_DEVICE_MIB, batch)
    assert benchmark.pedantic(probe, rounds=1, iterations=1) is fits


def _bare_fits(module: str, size: int, trained: str, device_mib: int, batch: int) -> bool:
    sys.path.insert(0, str(BARE_FIT.parent))
    from bare_fit import fits

    return fits(module, size, trained, device_mib, batch)


def test_the_batch_found_matches_a_bare_loops_bisection(benchmark, tmp_path):
    from tlbench.worker.weights import export_standin

    if not benchmark.enabled:
        pytest.skip("untimed: a search takes minutes; test_the_bare_loop_probes_fit_and_run_out_of_memory runs")
    backbones, modes, device_mib = BACKBONES, MODES, DEVICE_MIB

    def both() -> list[dict]:
        records = _tlbench(tmp_path / "runs", backbones, modes, device_mib)
        rows = []
        for (backbone, mode), record in records.items():
            search = record["batch_size_search"]
            module = str(export_standin(get_backbone(backbone)))
            bare = _bare(backbone, mode, module, device_mib, search["predicted"] or 1)
            rows.append(
                {
                    "backbone": backbone,
                    "mode": mode,
                    "predicted": search["predicted"],
                    "found": search["found"],
                    "bare_loop": bare["found"],
                    "probes": len(search["probes"]),
                    "bare_probes": len(bare["probes"]),
                    "trial": record["status"],
                }
            )
        return rows

    rows = benchmark.pedantic(both, rounds=1, iterations=1)
    benchmark.extra_info["device_mib"] = device_mib
    benchmark.extra_info["pairs"] = rows
    print(f"\n--batch-size max on {device_mib} MiB against a bare loop's bisection")
    print(f"{'backbone':22} {'mode':11} {'predicted':>9} {'found':>6} {'bare':>6} {'found/bare':>10}")
    for row in rows:
        ratio = row["found"] / row["bare_loop"] if row["found"] and row["bare_loop"] else float("nan")
        row["ratio"] = ratio
        print(f"{row['backbone']:22} {row['mode']:11} {row['predicted']!s:>9} {row['found']!s:>6} "
              f"{row['bare_loop']!s:>6} {ratio:>10.2f}")  # fmt: skip
    assert len(rows) == len(backbones) * len(modes)
    for row in rows:
        assert row["trial"] == "ok", row  # the trial ran at the batch found
        assert abs(row["ratio"] - 1) <= MAX_DIFFERENCE, row
