"""A trial's accuracy phase, the protocol before against today's, as a ratio
of seconds: the learning-rate search of `training.fit_and_select` for
ResNet V2 50 (stand-in weights, the embedded digits, the cpu budget's epochs
and rates, batch 8), in last_block (today on cached boundary activations)
and finetune (today with successive halving over the fine-tuning rates).
Each arm runs in a fresh process (bench/accuracy_phase.py), in ABBA turns;
the ratio is the median of the per-turn ratios (this shared machine's speed
wanders by 10-20 % over minutes). TensorFlow's ops run deterministically in
both arms, so that they follow the same trajectories. The choices each arm
made are printed and kept in extra_info beside the seconds.

Untimed (CI's --benchmark-disable pass): one turn of each arm for MobileNet
V2 0.35/128's last block on a few images, to show both run and choose alike.

    pytest bench/test_accuracy_phase.py --benchmark-only -s
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ARM = Path(__file__).with_name("accuracy_phase.py")
TRAIN_IMAGES, VAL_IMAGES, BATCH_SIZE = 64, 32, 8
TURNS = 2  # ABBA: each arm twice
# before / now: last_block skips the frozen part's forward pass in every step; successive halving
# stops a rate only where early stopping wouldn't have, so finetune saves epochs or nothing (noise: 10 %).
MIN_RATIO = {"last_block": 2.0, "finetune": 0.9}


def _arm(backbone: str, mode: str, protocol: str, train: int, val: int, batch: int) -> dict:
    argv = [sys.executable, str(ARM), backbone, mode, protocol, str(train), str(val), str(batch)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_both_protocols_run_and_choose_alike(benchmark):
    if benchmark.enabled:
        pytest.skip("timed: test_the_accuracy_phase_before_and_now compares ResNet V2 50's")
    arms = benchmark.pedantic(
        lambda: {p: _arm("mobilenet_v2_035_128", "last_block", p, 16, 8, 8) for p in ("before", "now")},
        rounds=1,
        iterations=1,
    )
    before, now = arms["before"], arms["now"]
    assert before["accuracy_path"] == "images" and now["accuracy_path"] == "boundary"
    assert now["base_learning_rate"] == before["base_learning_rate"] and now["kept_epoch"] == before["kept_epoch"]
    assert now["epochs"] <= before["epochs"]


@pytest.mark.parametrize("mode", ["last_block", "finetune"])
def test_the_accuracy_phase_before_and_now(benchmark, mode):
    if not benchmark.enabled:
        pytest.skip("untimed: ResNet V2 50 searches take minutes; test_both_protocols_run_and_choose_alike runs")

    def turns() -> list[dict]:
        order = ["before", "now", "now", "before"] * (TURNS // 2)
        return [{"protocol": p, **_arm("resnet_v2_50", mode, p, TRAIN_IMAGES, VAL_IMAGES, BATCH_SIZE)} for p in order]

    results = benchmark.pedantic(turns, rounds=1, iterations=1)
    before = [r for r in results if r["protocol"] == "before"]
    now = [r for r in results if r["protocol"] == "now"]
    # ABBA: the i-th "before" pairs with the i-th "now" from the other end, both a turn apart.
    ratio = statistics.median(b["seconds"] / n["seconds"] for b, n in zip(before, reversed(now), strict=True))
    benchmark.extra_info.update(mode=mode, ratio=ratio, turns=results)
    print(f"\nresnet_v2_50 {mode}, batch {BATCH_SIZE}, {TRAIN_IMAGES}/{VAL_IMAGES} images: accuracy phase")
    for r in results:
        print(f"  {r['protocol']:6} {r['seconds']:7.1f} s  {r['accuracy_path']:8} lr {r['base_learning_rate']:g}  "
              f"kept epoch {r['kept_epoch']}  val acc {r['val_accuracy']:.3f}  epochs {r['epochs']}")  # fmt: skip
    print(f"  before / now: {ratio:.2f}x")
    assert ratio >= MIN_RATIO[mode], ratio
    assert max(r["epochs"] for r in now) <= min(r["epochs"] for r in before)  # the same trajectories, or fewer
