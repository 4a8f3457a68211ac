"""`prefetch` installs into TFHUB_CACHE_DIR only modules that load as the
backbone (a feature vector of its length at its image size), atomically, and
checks a module already cached the same way. Real modules, real files; the
command in a real subprocess: tests/system/test_prefetch_command.py."""

import os
import re
import shutil
from pathlib import Path

import pytest
from hub_cache import MOBILENET, cached, corrupt, garbage_module, leftovers

from tlbench.errors import UsageError
from tlbench.worker import entry, weights

@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "hub"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(folder))
    return folder


def test_the_real_tf1_module_is_installed_and_resolves_offline(cache, shared_module):
    import tensorflow as tf
    import tensorflow_hub as hub

    path, how = weights.prefetch(MOBILENET, shared_module)
    assert (
        path == str(cached(cache))
        and how == f"copied from {shared_module}, loads: 1280 features at 128x128, TF1 Hub format"
    )
    assert hub.resolve(MOBILENET.handle) == path  # what a node without network finds
    assert hub.KerasLayer(path)(tf.zeros((1, 128, 128, 3))).shape == (1, 1280)


def test_a_module_of_another_size_is_not_installed_under_the_handle(cache, tiny_module):
    with pytest.raises(UsageError) as caught:
        weights.prefetch(MOBILENET, tiny_module)
    assert str(caught.value) == (
        f"module {tiny_module} for mobilenet_v2_035_128 gives 16 features, mobilenet_v2_035_128 has 1280; "
        "nothing was installed"
    )
    assert list(cache.iterdir()) == []


def test_a_broken_cached_module_is_replaced_by_a_valid_one(cache, mobilenet_sized):
    target = cached(cache)
    shutil.copytree(mobilenet_sized, target)
    corrupt(target)
    path, how = weights.prefetch(MOBILENET, mobilenet_sized)
    assert path == str(target) and how == f"copied from {mobilenet_sized}, loads: 1280 features at 128x128"
    data = next((target / "variables").glob("variables.data-*"))
    assert data.read_bytes() == Path(mobilenet_sized, "variables", data.name).read_bytes()
    assert leftovers(cache) == []
    assert weights.prefetch(MOBILENET)[1] == "already cached, loads: 1280 features at 128x128"


def test_a_broken_cached_module_stays_as_it_was_when_the_replacement_fails(cache, tmp_path, mobilenet_sized):
    target = cached(cache)
    shutil.copytree(mobilenet_sized, target)
    corrupt(target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    garbage = garbage_module(tmp_path / "garbage", "empty saved_model.pb")
    with pytest.raises(UsageError, match="nothing was installed"):
        weights.prefetch(MOBILENET, str(garbage))
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert leftovers(cache) == []


def test_a_valid_cached_module_is_kept_and_says_the_given_one_was_not_copied(cache, mobilenet_sized, shared_module):
    weights.prefetch(MOBILENET, mobilenet_sized)
    path, how = weights.prefetch(MOBILENET, shared_module)
    assert how == (
        f"already cached, loads: 1280 features at 128x128; {shared_module} not copied: remove the folder to replace it"
    )
    assert not weights.is_tf1_hub_module(path)


def test_a_failure_says_which_backbones_were_prefetched_before_it(cache, tmp_path, mobilenet_sized):
    garbage = garbage_module(tmp_path / "garbage", "empty saved_model.pb")
    names = ["mobilenet_v2_035_128", "resnet_v2_50"]
    with pytest.raises(UsageError) as caught:
        entry.prefetch(names, {"mobilenet_v2_035_128": mobilenet_sized, "resnet_v2_50": str(garbage)})
    message = str(caught.value)
    assert message.startswith(f"module {garbage} for resnet_v2_50 can't run on a batch of 224x224 RGB images")
    assert message.endswith("nothing was installed (mobilenet_v2_035_128 prefetched before it)")
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [cached(cache).name, f"{cached(cache).name}.descriptor.txt"]
    )


def test_a_disk_that_fills_while_copying_leaves_no_partial_folder(tmp_path, monkeypatch, shared_module):
    from disks import small_disk

    with small_disk(tmp_path / "disk", size="1m") as disk:  # the shared module is 1.8 MB
        monkeypatch.setenv("TFHUB_CACHE_DIR", str(disk))
        with pytest.raises(UsageError) as caught:
            entry.prefetch(["mobilenet_v2_035_128"], {"mobilenet_v2_035_128": shared_module})
        assert str(caught.value) == (
            f"copying {shared_module} into {disk} failed (No space left on device); nothing was installed"
        )
        assert list(disk.iterdir()) == []


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A real HTTP server on loopback for the files of a folder, as TF Hub
    serves modules: `served(folder)` gives the URL of the folder as a .tar.gz."""
    import functools
    import http.server
    import tarfile
    import threading

    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    def serve(folder) -> str:
        with tarfile.open(root / f"{Path(folder).name}.tar.gz", "w:gz") as tar:
            tar.add(folder, arcname=".")
        return f"http://127.0.0.1:{server.server_port}/{Path(folder).name}.tar.gz"

    yield serve
    server.shutdown()
    server.server_close()


def test_a_downloaded_module_is_checked_before_it_is_installed(cache, tmp_path, served, mobilenet_sized):
    url = served(mobilenet_sized)
    path, how = weights.prefetch(MOBILENET, url)
    assert path == str(cached(cache)) and how == f"downloaded from {url}, loads: 1280 features at 128x128"
    assert sorted(p.name for p in Path(path).iterdir()) == sorted(
        [*(p.name for p in Path(mobilenet_sized).iterdir()), weights.PREFETCH_STAMP]
    )
    assert os.environ["TFHUB_CACHE_DIR"] == str(cache)  # the staging download's cache was put back

    shutil.rmtree(path)
    Path(f"{path}.descriptor.txt").unlink()
    garbage = served(garbage_module(tmp_path / "garbage", "empty saved_model.pb"))
    with pytest.raises(UsageError, match=f"^module {re.escape(garbage)} for mobilenet_v2_035_128 can't run on "):
        weights.prefetch(MOBILENET, garbage)
    assert list(cache.iterdir()) == []


def test_an_unreachable_handle_leaves_nothing_in_the_cache(cache):
    import dataclasses

    unreachable = "http://127.0.0.1:9/google/imagenet/unreachable/feature_vector/5"  # discard port: refused at once
    backbone = dataclasses.replace(MOBILENET, handle=unreachable)
    with pytest.raises(UsageError, match=f"^TF Hub handle {unreachable} can't be reached .*--module mobilenet_v2_035"):
        weights.prefetch(backbone)
    assert list(cache.iterdir()) == []
