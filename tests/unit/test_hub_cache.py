"""A handle found complete in TFHUB_CACHE_DIR without tensorflow_hub, and
every case where only tensorflow_hub can say (its real resolution against the
same folder: tests/worker/test_prepare_imports.py)."""

import pytest

from tlbench.worker import hub_cache

HANDLE = "https://tfhub.dev/google/imagenet/mobilenet_v2_035_128/feature_vector/5"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """Where tensorflow_hub keeps HANDLE in a TFHUB_CACHE_DIR of its own."""
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TFHUB_MODEL_LOAD_FORMAT", raising=False)
    return hub_cache.handle_folder(str(tmp_path), HANDLE)


def test_a_complete_module_is_found_by_its_handle(folder):
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"graph")
    assert hub_cache._complete_in_hub_cache(HANDLE) == str(folder)


def test_what_only_tensorflow_hub_can_resolve_is_left_to_it(folder, monkeypatch):
    assert hub_cache._complete_in_hub_cache(HANDLE) is None  # not there: it downloads
    folder.mkdir()
    assert hub_cache._complete_in_hub_cache(HANDLE) is None  # an empty folder: it downloads over it
    (folder / "saved_model.pb").write_bytes(b"graph")
    lock = folder.with_name(folder.name + ".lock")
    lock.write_text("host.1.uid")
    assert hub_cache._complete_in_hub_cache(HANDLE) is None  # a download may be under way: it waits
    lock.unlink()
    assert hub_cache._complete_in_hub_cache(HANDLE) == str(folder)
    assert hub_cache._complete_in_hub_cache(str(folder)) is None  # a local path is not a handle
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")  # read from storage, not the cache
    assert hub_cache._complete_in_hub_cache(HANDLE) is None
    monkeypatch.delenv("TFHUB_MODEL_LOAD_FORMAT")
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    assert hub_cache._complete_in_hub_cache(HANDLE) is None  # its own default cache
