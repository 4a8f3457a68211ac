"""Module loading through the real hub.KerasLayer path, offline."""

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from tlbench.errors import UsageError
from tlbench.registry import get_backbone
from tlbench.worker import weights

UNREACHABLE = "http://127.0.0.1:9/google/imagenet/unreachable/feature_vector/5"  # discard port: refused at once


def test_tiny_saved_model_loads_through_hub_keras_layer(tiny_module):
    import tensorflow as tf
    import tensorflow_hub as hub

    layer = hub.KerasLayer(tiny_module, trainable=True)
    features = layer(tf.zeros((2, 64, 64, 3)), training=True)
    assert features.shape == (2, 16)
    assert len(layer.trainable_weights) > 0 and not weights.is_tf1_hub_module(tiny_module)


def test_the_real_tf1_module_loads_for_inference(shared_module):
    import tensorflow as tf
    import tensorflow_hub as hub

    assert weights.is_tf1_hub_module(shared_module)
    features = hub.KerasLayer(shared_module)(tf.zeros((1, 128, 128, 3)))
    assert features.shape == (1, 1280)


def test_local_module_wins_over_everything(tiny_module):
    source = weights.choose_source(get_backbone("resnet_v2_50"), "hub", tiny_module)
    assert (source.kind, source.weights) == ("local", f"local:{tiny_module}")
    assert weights.materialize(source, get_backbone("resnet_v2_50")) == tiny_module


def test_hub_handle_is_found_in_tfhub_cache_dir_without_network(shared_module, tmp_path, monkeypatch):
    # tensorflow_hub caches a handle under TFHUB_CACHE_DIR/sha1(handle).
    backbone = dataclasses.replace(get_backbone("mobilenet_v2_035_128"), handle=UNREACHABLE)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    os.symlink(shared_module, tmp_path / hashlib.sha1(UNREACHABLE.encode()).hexdigest())
    source = weights.choose_source(backbone, "hub", None)
    assert (source.kind, source.weights) == ("tfhub", f"tfhub:{UNREACHABLE}")
    path = weights.materialize(source, backbone)
    assert Path(path, "saved_model.pb").exists()


def test_weights_hub_fails_clearly_when_the_handle_cannot_be_reached(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    backbone = dataclasses.replace(get_backbone("resnet_v2_50"), handle=UNREACHABLE)
    with pytest.raises(UsageError) as caught:
        weights.choose_source(backbone, "hub", None)
    message = str(caught.value)
    assert "\n" not in message and UNREACHABLE in message
    assert "TFHUB_CACHE_DIR" in message and "--module resnet_v2_50=PATH" in message
    assert "Connection refused" in message


def test_weights_auto_falls_back_to_a_stand_in_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    backbone = dataclasses.replace(get_backbone("mobilenet_v2_035_128"), handle=UNREACHABLE)
    source = weights.choose_source(backbone, "auto", None)
    assert source.kind == "standin" and source.weights == "standin:random-init"
    assert "TF Hub handle unreachable" in source.note and "Connection refused" in source.note


def test_stand_in_is_exported_once_and_loads_through_hub(tmp_path, monkeypatch):
    import tensorflow as tf
    import tensorflow_hub as hub

    monkeypatch.setenv("TLBENCH_CACHE_DIR", str(tmp_path))  # this test's export, no other process's staging

    backbone = get_backbone("mobilenet_v2_035_128")
    source = weights.choose_source(backbone, "standin", None)
    assert source.note == "--weights standin"
    path = Path(source.location)
    assert path == weights.standin_dir(backbone) and (path / "saved_model.pb").exists()
    stamp = (path / "saved_model.pb").stat().st_mtime_ns
    assert weights.export_standin(backbone) == path
    assert (path / "saved_model.pb").stat().st_mtime_ns == stamp  # cached, not exported again
    assert not list(path.parent.glob("*.tmp-*"))  # no staging folder left behind
    features = hub.KerasLayer(str(path), trainable=True)(tf.zeros((2, 128, 128, 3)), training=True)
    assert features.shape == (2, 1280)


def test_a_half_written_tfhub_cache_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    backbone = dataclasses.replace(get_backbone("mobilenet_v2_035_128"), handle=UNREACHABLE)
    folder = tmp_path / hashlib.sha1(UNREACHABLE.encode()).hexdigest()
    (folder / "variables").mkdir(parents=True)  # a copy cut off before saved_model.pb
    (folder / "variables" / "variables.index").write_bytes(b"partial")
    for policy in ("hub", "auto"):
        with pytest.raises(UsageError, match="is incomplete \\(no saved_model.pb\\).*delete it and run"):
            weights.choose_source(backbone, policy, None)


def test_a_stale_download_lock_of_a_dead_process_is_cleared_not_waited_for(tmp_path, monkeypatch):
    """tensorflow_hub would wait ten minutes for a lock that makes no
    progress; one left by a process that is gone is removed at once."""
    import socket
    import time

    import psutil

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    backbone = dataclasses.replace(get_backbone("mobilenet_v2_035_128"), handle=UNREACHABLE)
    module = tmp_path / hashlib.sha1(UNREACHABLE.encode()).hexdigest()
    pid = next(p for p in range(4_190_000, 4_194_000) if not psutil.pid_exists(p))  # no such process
    lock = module.with_name(module.name + ".lock")
    lock.write_text(f"{socket.gethostname()}.{pid}.abc123")
    module.with_name(f"{module.name}.abc123.tmp").mkdir()
    started = time.monotonic()
    with pytest.raises(UsageError, match="can't be reached"):
        weights.choose_source(backbone, "hub", None)
    assert time.monotonic() - started < 60 and not lock.exists()
    assert not module.with_name(f"{module.name}.abc123.tmp").exists()
