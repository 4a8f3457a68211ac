"""A run's preparation (weights sources, FLOP counts) imports TensorFlow only
for work its caches don't hold: a stand-in exported, a module checked, FLOPs
counted once. Each call in a fresh process, as the driver makes it."""

import json
import os
import subprocess
import sys

PREPARE = """
import json, sys
from tlbench.worker import entry
prepared = entry.prepare_backbones(*json.loads(sys.argv[1]))
print(json.dumps({"tensorflow": "tensorflow" in sys.modules, "prepared": prepared}))
"""


def _prepare_in_fresh_process(*args, env=None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PREPARE, json.dumps(args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_a_prepared_stand_in_is_prepared_again_without_tensorflow():
    first = _prepare_in_fresh_process(["mobilenet_v2_035_128"], "standin", {}, 0.997)
    again = _prepare_in_fresh_process(["mobilenet_v2_035_128"], "standin", {}, 0.997)
    assert again["prepared"] == first["prepared"] and not again["tensorflow"]
    assert again["prepared"]["sources"]["mobilenet_v2_035_128"]["kind"] == "standin"


def test_a_module_in_the_hub_cache_is_checked_once_then_found_without_tensorflow(tmp_path, mobilenet_sized):
    """`prefetch` installs the module under its handle; the first run checks
    it (loading it), the next finds the handle and the check in the caches."""
    import tensorflow_hub as hub

    from tlbench.registry import get_backbone
    from tlbench.worker import hub_cache, weights

    cache = {"TFHUB_CACHE_DIR": str(tmp_path / "hub"), "https_proxy": "http://127.0.0.1:9"}  # and no network
    os.environ.update(cache)
    try:
        path, _ = weights.prefetch(get_backbone("mobilenet_v2_035_128"), mobilenet_sized)
    finally:
        for name in cache:
            os.environ.pop(name)
    first = _prepare_in_fresh_process(["mobilenet_v2_035_128"], "hub", {}, 0.997, env=cache)
    again = _prepare_in_fresh_process(["mobilenet_v2_035_128"], "hub", {}, 0.997, env=cache)
    source = again["prepared"]["sources"]["mobilenet_v2_035_128"]
    assert source["kind"] == "tfhub" and again["prepared"] == first["prepared"]
    assert not again["tensorflow"]
    os.environ.update(cache)
    try:
        # The folder found without tensorflow_hub is the one it resolves.
        assert hub_cache.resolve(source["location"]) == hub.resolve(source["location"]) == path
    finally:
        for name in cache:
            os.environ.pop(name)
