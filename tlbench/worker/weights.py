"""Where a backbone's weights come from, in this order:

1. `--module NAME=PATH_OR_URL`: a local SavedModel / TF Hub module directory,
   or a URL resolved by tensorflow_hub;
2. the backbone's TF Hub handle, through `TFHUB_CACHE_DIR` or the network;
3. with `--weights auto` only: a stand-in of the same architecture from
   `tf_keras.applications` with random initial weights, exported once as a TF2
   SavedModel into tlbench's cache and loaded through the same hub.KerasLayer.

The driver decides once per run, through `entry.prepare_backbones` in a fresh
process; each trial materializes its source again on its own node.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from importlib.metadata import version
from pathlib import Path

from tlbench.errors import UsageError, one_line, os_reason
from tlbench.files import build_folder_atomically, cache_root, computed_once, is_url, write_json_atomic
from tlbench.plan import DEFAULT_BATCH_NORM_MOMENTUM, ModuleSource
from tlbench.registry import Backbone
from tlbench.worker.hub_cache import check_hub_cache_dir, handle_folder, hub_cache_dir_label, network_timeout, resolve
from tlbench.worker.savedmodel import EXPORT_FORMAT, save_module_atomically

STANDIN_SEED = 0  # stand-ins are random but reproducible
# The files beside the SavedModels tlbench exports, saying what they hold.
STANDIN_STAMP = "tlbench_standin.json"
CONVERTED_STAMP = "tlbench_converted.json"
PREFETCH_STAMP = "tlbench_prefetched.json"  # in a module `prefetch` installed: what it checked


def is_tf1_hub_module(path: str) -> bool:
    """TF1 Hub format modules carry `tfhub_module.pb`; hub.KerasLayer runs them
    for inference only."""
    return Path(path, "tfhub_module.pb").exists()


def choose_source(
    backbone: Backbone, policy: str, override: str | None, batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM
) -> ModuleSource:
    """Decide, once per run, where a backbone's weights come from. Downloads
    into TFHUB_CACHE_DIR and exports stand-ins as a side effect, so that the
    trials find them cached."""
    if override is not None:
        if is_url(override):
            try:
                resolve(override)
            except Exception as error:  # noqa: BLE001 - any failure to fetch means "not reachable"
                raise UsageError(f"--module {backbone.name}={override} can't be reached ({one_line(error)})") from None
            return ModuleSource("tfhub", override)
        return ModuleSource("local", override)
    if policy in ("auto", "hub"):
        try:
            resolve(backbone.handle)
            return ModuleSource("tfhub", backbone.handle)
        except UsageError:
            raise  # reached, but broken: say so rather than fall back
        except Exception as error:  # noqa: BLE001 - any failure to fetch means "not reachable"
            reason = one_line(error)
            if policy == "hub":
                raise UsageError(
                    f"TF Hub handle {backbone.handle} for {backbone.name} can't be reached ({reason}); "
                    f"fill TFHUB_CACHE_DIR (now {hub_cache_dir_label()}) with 'python -m tlbench prefetch' where "
                    f"there is network, pass --module {backbone.name}=PATH, or use --weights auto"
                ) from None
            note = f"TF Hub handle unreachable ({reason}); stand-in with random initial weights"
    else:
        note = "--weights standin"
    return ModuleSource("standin", str(export_standin(backbone, batch_norm_momentum)), note)


def materialize(
    source: ModuleSource, backbone: Backbone, batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM
) -> str:
    """A local directory for hub.KerasLayer, from cache where possible."""
    if source.kind == "local":
        return source.location
    if source.kind == "tfhub":
        return resolve(source.location)
    return str(export_standin(backbone, batch_norm_momentum))


def standin_dir(backbone: Backbone, batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM) -> Path:
    # tf_keras' version from its package metadata: importing it would import
    # TensorFlow, which a run's preparation needs only to export or check.
    tf_keras = version("tf-keras")
    name = f"{backbone.name}-seed{STANDIN_SEED}-bnm{batch_norm_momentum:g}-tfkeras{tf_keras}-{EXPORT_FORMAT}"
    return cache_root() / "standin" / name


def exported_batch_norm_momentum(module_path: str) -> float | None:
    """The BatchNorm momentum tlbench exported a stand-in or converted module
    with (read from its stamp); None for any other module."""
    for stamp in (STANDIN_STAMP, CONVERTED_STAMP):
        file = Path(module_path, stamp)
        if file.exists():
            return json.loads(file.read_text()).get("batch_norm_momentum")
    return None


def set_batch_norm_momentum(model, momentum: float) -> None:
    """Every BatchNormalization layer of a tf_keras model, nested ones too,
    updates its moving averages with `momentum` when it trains."""
    import tf_keras as keras

    for layer in model.submodules:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def standin_model(backbone: Backbone, adapt=None):
    """The stand-in architecture as a tf_keras Model: images in [0, 1] (as a
    TF Hub module takes them) -> the pooled feature vector; random weights.
    `adapt` may replace the bare architecture (Model -> Model) before it is
    wrapped."""
    import tf_keras as keras

    keras.utils.set_random_seed(STANDIN_SEED)
    size = backbone.image_size
    architecture = getattr(keras.applications, backbone.standin)(
        include_top=False,
        weights=None,
        pooling="avg",
        input_shape=(size, size, 3),
        **backbone.standin_kwargs,
    )
    if adapt is not None:
        architecture = adapt(architecture)
    images = keras.Input((size, size, 3), name="images")
    features = architecture(images * 2.0 - 1.0)  # hub convention [0, 1] -> Keras "tf" [-1, 1]
    if features.shape[-1] != backbone.feature_dim:
        raise RuntimeError(
            f"stand-in {backbone.standin} gives {features.shape[-1]} features, registry says {backbone.feature_dim}"
        )
    return keras.Model(images, features, name=f"{backbone.name}_standin")


def export_standin(backbone: Backbone, batch_norm_momentum: float = DEFAULT_BATCH_NORM_MOMENTUM) -> Path:
    """The stand-in SavedModel for `backbone`, exported on first use.

    It takes images in [0, 1] like a TF Hub module and returns the pooled
    feature vector. A SavedModel's BatchNorm momentum is fixed when it is
    traced, so there is one export per momentum.
    """
    target = standin_dir(backbone, batch_norm_momentum)
    with computed_once(target):  # exported once for the trials that share the cache
        if not (target / "saved_model.pb").exists():
            metadata = {
                "backbone": backbone.name,
                "architecture": backbone.standin,
                "kwargs": backbone.standin_kwargs,
                "seed": STANDIN_SEED,
                "weights": "random-init",
                "batch_norm_momentum": batch_norm_momentum,
            }
            model = standin_model(backbone)
            set_batch_norm_momentum(model, batch_norm_momentum)
            save_module_atomically(model, target, STANDIN_STAMP, lambda staging: metadata)
    return target


class _Unusable(Exception):
    """Why a module can't serve as a backbone: the end of a sentence that
    starts with the module's name."""


def _feature_count(module_path: str, backbone: Backbone) -> int:
    """The length of the feature vector the module gives for one image of the
    backbone's size (`_loaded_feature_count`), kept in tlbench's cache for the
    module folder as it is now (every file's path, size and time: a copy cut
    off or replaced is checked again). A run's preparation then loads no
    module it has checked before, and imports no TensorFlow."""
    folder = Path(module_path).resolve()
    try:
        stats = {str(f.relative_to(folder)): f.stat() for f in folder.rglob("*")}
    except OSError:  # a file that can't be read: the load says why
        return _loaded_feature_count(module_path, backbone)
    files = sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats.items())
    state = hashlib.sha256(json.dumps([str(folder), backbone.image_size, files]).encode()).hexdigest()[:24]
    entry = cache_root() / "checks" / f"features-{state}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads(entry.read_text())["features"])
    features = _loaded_feature_count(module_path, backbone)
    with contextlib.suppress(OSError):  # a read-only cache only costs a reload
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(entry, {"features": features, "module": module_path})
    return features


def _loaded_feature_count(module_path: str, backbone: Backbone) -> int:
    """The length of the feature vector the module gives for one image of the
    backbone's size, loaded through hub.KerasLayer as a trial loads it (TF2
    SavedModels and TF1 Hub modules alike)."""
    import tensorflow as tf

    from tlbench.worker.model import hub_layer

    size = backbone.image_size
    try:
        output = hub_layer(module_path)(tf.zeros([1, size, size, 3]))
    except Exception as error:  # noqa: BLE001 - whatever the module does wrong, one line
        raise _Unusable(
            f"can't run on a batch of {size}x{size} RGB images ({type(error).__name__}: {one_line(error)})"
        ) from None
    if len(output.shape) != 2:
        raise _Unusable(f"outputs shape {list(output.shape)} for one image, not a feature vector (batch, features)")
    return int(output.shape[-1])


def check_feature_vector(module_path: str, backbone: Backbone) -> None:
    """A module must map a batch of images to a batch of feature vectors;
    anything else (a classifier's logits are fine, a feature map is not) is a
    UsageError before any trial starts."""
    try:
        _feature_count(module_path, backbone)
    except _Unusable as why:
        raise UsageError(
            f"module {module_path} for {backbone.name} {why}; give an image feature-vector module "
            "(TF Hub's .../feature_vector/...)"
        ) from None


def _verify(module_path: str, backbone: Backbone) -> str:
    """What `prefetch` requires of a module it keeps under a backbone's handle
    (every run resolving the handle takes it for that backbone): a feature
    vector of the backbone's length at its image size. Says what was checked."""
    features = _feature_count(module_path, backbone)
    if features != backbone.feature_dim:
        raise _Unusable(f"gives {features} features, {backbone.name} has {backbone.feature_dim}")
    size = backbone.image_size
    return f"loads: {features} features at {size}x{size}" + (
        ", TF1 Hub format" if is_tf1_hub_module(module_path) else ""
    )


def prefetch(backbone: Backbone, location: str | None = None) -> tuple[str, str]:
    """Put `backbone`'s module into TFHUB_CACHE_DIR under its TF Hub handle, so
    that every machine reading that folder resolves the handle offline.

    Without `location` the handle is downloaded; with one (a module folder or
    a URL) that module is copied there. Either is checked (`_verify`) in a
    staging folder and renamed into place only if it passes: a module that
    fails installs nothing. A module already cached is checked the same way:
    a valid one is kept (a `location` is not copied over it); a broken one is
    replaced by `location`, or without one a UsageError says how to fix it.
    Returns (path, what happened and what was checked)."""
    target = handle_folder(check_hub_cache_dir(), backbone.handle)
    if _is_cached(target):
        try:
            checked = _verify(str(target), backbone)
        except _Unusable as why:
            if location is None:
                raise UsageError(
                    f"the cached module for {backbone.name} at {target} {why}; remove that folder and run "
                    f"prefetch again, or re-run prefetch with --module {backbone.name}=PATH to replace it"
                ) from None
        else:
            ignored = "" if location is None else f"; {location} not copied: remove the folder to replace it"
            return str(target), f"already cached, {checked}{ignored}"
    source = location or backbone.handle
    checked = _install(target, backbone, source)
    how = "downloaded from" if is_url(source) else "copied from"
    # tensorflow_hub's own note beside a cached module: which handle it holds.
    Path(f"{target}.descriptor.txt").write_text(f"Module: {backbone.handle}\n{how.capitalize()}: {source}\n")
    return str(target), f"{how} {source}, {checked}"


def _is_cached(target: Path) -> bool:
    """Something is there; an empty folder is not (tensorflow_hub downloads over it)."""
    return os.path.lexists(target) and not (target.is_dir() and not any(target.iterdir()))


def _install(target: Path, backbone: Backbone, source: str) -> str:
    """The module at `source` (a folder or a URL) built at `target` through a
    staging folder, checked there; a broken module at `target` is moved aside
    meanwhile and put back if the new one fails. What was checked."""
    checked = []

    def fill(staging: Path) -> dict:
        if is_url(source):
            _download_into(staging, source, backbone)
        else:
            _copy_module(source, staging)
        try:
            checked.append(_verify(str(staging), backbone))
        except _Unusable as why:  # the reason may name the staging folder: name the source
            reason = str(why).replace(str(staging), source)
            raise UsageError(f"module {source} for {backbone.name} {reason}; nothing was installed") from None
        return {"backbone": backbone.name, "handle": backbone.handle, "source": source, "checked": checked[0]}

    aside = None
    if _is_cached(target):  # broken: `prefetch` checked it
        aside = target.with_name(f"{target.name}.broken-{uuid.uuid4().hex}")
        os.rename(target, aside)
    try:
        build_folder_atomically(target, PREFETCH_STAMP, fill)
    except BaseException:
        if aside is not None and not os.path.lexists(target):
            os.rename(aside, target)  # nothing changed
        raise
    if aside is not None and aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    elif aside is not None:
        aside.unlink()
    return checked[0] if checked else "checked by another prefetch that installed it meanwhile"


def _copy_module(source: str, staging: Path) -> None:
    failed = []  # copytree turns each file's OSError into text; keep the first

    def copy(src, dst):
        try:
            return shutil.copy2(src, dst)
        except OSError as error:
            failed.append(error)
            raise

    try:
        shutil.copytree(source, staging, symlinks=False, dirs_exist_ok=True, copy_function=copy)
    except OSError as error:  # e.g. a full disk
        reason = os_reason(failed[0] if failed else error)
        raise UsageError(f"copying {source} into {staging.parent} failed ({reason}); nothing was installed") from None


def _download_into(staging: Path, url: str, backbone: Backbone) -> None:
    """tensorflow_hub's download of `url`, with its cache inside `staging`
    (never in TFHUB_CACHE_DIR itself), moved up into `staging`."""
    import tensorflow_hub as hub

    downloads = staging / ".download"
    previous = os.environ["TFHUB_CACHE_DIR"]
    os.environ["TFHUB_CACHE_DIR"] = str(downloads)
    try:
        with network_timeout():
            module = Path(hub.resolve(url))
    except Exception as error:  # noqa: BLE001 - any failure to fetch means "not reachable"
        what = f"TF Hub handle {url}" if url == backbone.handle else f"--module {backbone.name}={url}"
        raise UsageError(
            f"{what} can't be reached ({one_line(error)}); prefetch on a machine with access, "
            f"or pass --module {backbone.name}=PATH (a module folder)"
        ) from None
    finally:
        os.environ["TFHUB_CACHE_DIR"] = previous
    for entry in module.iterdir():
        entry.rename(staging / entry.name)
    shutil.rmtree(downloads)
