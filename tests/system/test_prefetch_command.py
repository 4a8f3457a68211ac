"""`prefetch` through the command in a process of its own: a garbage or a
damaged module refused in one line with exit status 2 and nothing installed,
a good one installed and found again (tests/worker/test_prefetch.py has the
rest of `prefetch`)."""

import shutil
from pathlib import Path

import pytest
from hub_cache import cached, corrupt, garbage_module, leftovers

from tlbench.worker import weights


@pytest.mark.parametrize("kind", ["empty saved_model.pb", "random TF1 Hub module"])
def test_a_garbage_module_is_refused_in_one_line_and_nothing_is_installed(tmp_path, run_in_subprocess, kind):
    garbage, cache = garbage_module(tmp_path / "garbage", kind), tmp_path / "hub"
    done = run_in_subprocess("prefetch", "--module", f"mobilenet_v2_035_128={garbage}", env={"TFHUB_CACHE_DIR": cache})
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"tlbench: error: module {garbage} for mobilenet_v2_035_128 can't run on a batch of 128x128")
    assert line.endswith("nothing was installed") and ".tmp-" not in line  # names the source, not the staging copy
    assert not cache.exists() or list(cache.iterdir()) == []  # no module, no staging folder, no descriptor


def test_a_small_module_of_the_backbones_size_is_installed_and_says_what_was_checked(
    tmp_path, run_in_subprocess, mobilenet_sized
):
    cache = tmp_path / "hub"
    done = run_in_subprocess(
        "prefetch", "--module", f"mobilenet_v2_035_128={mobilenet_sized}", env={"TFHUB_CACHE_DIR": cache}
    )
    assert done.returncode == 0, done.stderr
    target = cached(cache)
    expected = f"mobilenet_v2_035_128: {target} (copied from {mobilenet_sized}, loads: 1280 features at 128x128)"
    assert done.stdout.splitlines() == [expected]
    assert (target / "saved_model.pb").read_bytes() == Path(mobilenet_sized, "saved_model.pb").read_bytes()
    assert (target / weights.PREFETCH_STAMP).exists() and leftovers(cache) == []

    again = run_in_subprocess("prefetch", "--backbone", "mobilenet_v2_035_128", env={"TFHUB_CACHE_DIR": cache})
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"mobilenet_v2_035_128: {target} (already cached, loads: 1280 features at 128x128)"
    ]


def test_a_corrupted_cached_module_is_detected_not_trusted(tmp_path, run_in_subprocess, mobilenet_sized):
    cache = tmp_path / "hub"
    target = cached(cache)
    shutil.copytree(mobilenet_sized, target)  # cached earlier, then damaged
    corrupt(target)
    done = run_in_subprocess("prefetch", "--backbone", "mobilenet_v2_035_128", env={"TFHUB_CACHE_DIR": cache})
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"tlbench: error: the cached module for mobilenet_v2_035_128 at {target} can't run on")
    assert line.endswith(
        "remove that folder and run prefetch again, or re-run prefetch with --module mobilenet_v2_035_128=PATH "
        "to replace it"
    )
    assert sorted(p.name for p in cache.iterdir()) == [target.name]  # left for the user to look at
