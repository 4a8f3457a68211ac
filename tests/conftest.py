"""Shared test fixtures: real small things, no mocks.

- `tiny_module`: a tiny TF2 SavedModel (conv + BatchNorm + pooling) built here
  and loaded through hub.KerasLayer exactly like a TF Hub module.
- `mobilenet_sized`: the same with MobileNet V2's 1280 features.
- `shared_module`: Google's real TF1 Hub module in ../shared/models/.
- Caches (stand-ins, TF Hub) live in this session's temporary folder: with
  pytest-xdist, each worker process has its own.

The tests come in three tiers, a folder each, run in this order (tox.ini):

- `unit/`: this process imports neither TensorFlow nor Ray; seconds.
- `worker/`: TensorFlow, in this process or in the fresh process tlbench
  starts for worker-side code (`isolated`); no Ray.
- `system/`: Ray (the session's, clusters), the command end to end in a
  process of its own, signals.

Each test gets its tier's marker (`pytest -m unit`), and a unit test that
loads TensorFlow or Ray fails, naming what it loaded.
Hypothesis runs the `ci` profile (fewer examples) where CI is set.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

import tlbench  # noqa: F401 - sets TF_USE_LEGACY_KERAS before any TensorFlow import

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODULE = ROOT.parent / "shared" / "models" / "mobilenet_v2_035_128_feature_vector_2"
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
TIERS = ("unit", "worker", "system")
# What the unit tier never loads: each takes seconds to import and brings threads and processes.
HEAVY = ("tensorflow", "ray")

# Hypothesis' profiles: `default` locally (100 examples a property, or the
# test's own max_examples); under CI its built-in `ci` (the same examples each
# run, no deadline, no example database) with fewer examples.
# HYPOTHESIS_PROFILE=ci tries CI's locally.
settings.register_profile("ci", settings.get_profile("ci"), max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


def ci_examples(local: int, ci: int) -> int:
    """max_examples for a property that sets its own: `local`, or `ci` under the ci profile."""
    return ci if settings.get_current_profile_name() == "ci" else local


# A folder for tlbench's and TF Hub's caches shared by the test sessions that
# name it (tox: one per tox run, for every tier): what a cache holds (stand-in
# exports, graph counts, converted modules) is then made once, not once per
# tier and per pytest-xdist process. Cache entries are written atomically, so
# processes sharing them race safely.
SHARED_CACHE = "TLBENCH_TEST_CACHE"


def pytest_configure(config):
    # Every test and every subprocess it starts (Ray workers included) sees
    # these caches, never the user's. pytest-xdist's processes inherit the
    # controller's; the controller alone removes a folder it made.
    if hasattr(config, "workerinput"):
        return
    if os.environ.get(SHARED_CACHE):
        cache = Path(os.environ[SHARED_CACHE])
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = Path(tempfile.mkdtemp(prefix="tlbench-tests-"))
        config._tlbench_cache = cache
    os.environ["TLBENCH_CACHE_DIR"] = str(cache / "tlbench")
    os.environ["TFHUB_CACHE_DIR"] = str(cache / "tfhub")
    # A Ray started in this process (the session's) binds to loopback only,
    # as `run`'s does; read when Ray is first imported.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_tlbench_cache", ""), ignore_errors=True)


def tier(path: Path) -> str | None:
    """The tier of a test file: the folder under tests/ it sits in."""
    parts = Path(path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def _heavy_loaded() -> set[str]:
    return {name for name in HEAVY if name in sys.modules}


# What the tests before have loaded: a unit test is blamed only for what came in while it ran.
_loaded_before: set[str] = set()


def pytest_collection_modifyitems(config, items):
    for item in items:
        found = tier(item.path)
        if found:
            item.add_marker(found)
    # A session of unit tests alone (the unit tier): what collecting them loaded
    # is blamed on the first test, so that a module-level import shows too.
    if not all(tier(item.path) == "unit" for item in items):
        _loaded_before.update(_heavy_loaded())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Under --dist loadgroup a pytest-xdist process puts an xdist_group test's
    group into its id; where it can't (pytest 9.2, pytest-xdist#1386) the
    tests of one shared run would be spread over both processes and the run
    made twice, silently. They fail instead, before their fixtures run."""
    grouped = item.config.getoption("loadgroup", False) and item.get_closest_marker("xdist_group")
    if grouped and "@" not in item.nodeid:
        pytest.fail("--dist loadgroup ignored this test's xdist_group (pytest-xdist#1386)", pytrace=False)


@pytest.fixture(autouse=True)
def _unit_tier_loads_no_tensorflow_or_ray(request):
    """Fails a unit test during which TensorFlow or Ray was imported (by its
    module, a fixture or its body): it belongs in worker/ or system/."""
    yield
    loaded = _heavy_loaded()
    new = loaded - _loaded_before
    _loaded_before.update(loaded)
    if new and tier(request.node.path) == "unit":
        pytest.fail(
            f"the unit tier loads neither TensorFlow nor Ray, and {', '.join(sorted(new))} was imported by now: "
            "move the test that imports it to tests/worker/ (TensorFlow) or tests/system/ (Ray, processes)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def shared_module() -> str:
    if not (SHARED_MODULE / "saved_model.pb").exists():
        pytest.fail(f"the real TF Hub module is missing: {SHARED_MODULE} (../shared beside the project)")
    return str(SHARED_MODULE)


@pytest.fixture(scope="session")
def tiny_module(tmp_path_factory) -> str:
    from modules import save_tiny_feature_module

    return save_tiny_feature_module(tmp_path_factory.mktemp("tiny") / "module")


@pytest.fixture(scope="session")
def mobilenet_sized(tmp_path_factory) -> str:
    """The tiny module with MobileNet V2's 1280 features: it takes any image
    size, so it fits mobilenet_v2_035_128 (the 16-feature `tiny_module` fits
    no backbone)."""
    from modules import save_tiny_feature_module

    return save_tiny_feature_module(tmp_path_factory.mktemp("tiny1280") / "module", features=1280)


@pytest.fixture(scope="session")
def run_in_subprocess():
    """Runs `python -m tlbench ARGS` through a wrapper that fails if the driver
    imported TensorFlow; returns the CompletedProcess."""
    import subprocess

    wrapper = (
        "import sys\n"
        "from tlbench.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert 'tensorflow' not in sys.modules, 'the driver imported TensorFlow'\n"
        "sys.exit(rc)\n"
    )

    def run(*args, timeout=600, env=None, drop=()):
        """`env` added to this process's environment, less the variables
        whose names start with one of `drop` (("TF_",): a new user's shell)."""
        environment = {key: value for key, value in {**os.environ, **(env or {})}.items() if not key.startswith(drop)}
        return subprocess.run(
            [sys.executable, "-c", wrapper, *map(str, args)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def control_folder(tmp_path_factory) -> Path:
    """Where null trials (`null_trials`) read what a test asks of them; Ray
    workers started from here on inherit its name."""
    import null_trials

    folder = tmp_path_factory.mktemp("control")
    os.environ[null_trials.CONTROL] = str(folder)
    return folder


def _emptied(folder: Path) -> Path:
    for path in folder.iterdir():
        path.unlink()
    return folder


class _SessionRay:
    """One local Ray for the test session, with two logical GPUs: the
    in-process runner tests run their null trials on it. Should anything in
    the session shut it down (a test's Ray left running is reused by `run`
    and released with it), it is started again for the next test that needs
    it, and the shutdown's caller is reported."""

    def __init__(self):
        import null_trials
        import ray
        import ray.cloudpickle

        from tlbench.driver import cluster

        assert os.environ[cluster.RAY_LOOPBACK_SWITCH] == "0"  # set at pytest_configure, before Ray's import
        ray.cloudpickle.register_pickle_by_value(null_trials)  # workers can't import tests/
        self.ray, self.cluster, self.shut_down_by = ray, cluster, None
        self._shutdown = ray.shutdown
        ray.shutdown = self._noted_shutdown

    def _noted_shutdown(self, *args, **kwargs):
        import traceback

        self.shut_down_by = "".join(traceback.format_stack(limit=8)[:-1])
        return self._shutdown(*args, **kwargs)

    def ensure(self) -> None:
        import warnings

        if self.ray.is_initialized():
            if self.ray.cluster_resources().get("GPU") == 2:
                return
            warnings.warn("a Ray other than the session's was running; replaced")
            self._shutdown()
        elif self.shut_down_by is not None:
            warnings.warn(f"the session's Ray was shut down; started again. Shut down by:\n{self.shut_down_by}")
        self.ray.init(
            num_cpus=2,
            num_gpus=2,
            include_dashboard=False,
            _temp_dir=str(self.cluster.RAY_TEMP_DIR),
            log_to_driver=False,
            object_store_memory=self.cluster.OBJECT_STORE_BYTES,
        )
        self.shut_down_by = None

    def close(self) -> None:
        self.ray.shutdown = self._shutdown
        self._shutdown()


@pytest.fixture(scope="session")
def ray_session(control_folder):
    session = _SessionRay()
    yield session
    session.close()


@pytest.fixture
def control(ray_session, control_folder) -> Path:
    """The null trials' control folder, emptied for this test; the session's Ray running."""
    ray_session.ensure()
    return _emptied(control_folder)


@pytest.fixture
def null_run(control_folder):
    """`python -m null_trials ...` in a process of its own (tests/ on its
    path and its Ray workers'): the runner with null trials, as `run` runs it.
    Returns a function giving the Popen."""
    import subprocess

    _emptied(control_folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    env.pop("RAY_ADDRESS", None)

    def start(*args) -> subprocess.Popen:
        command = [sys.executable, "-m", "null_trials", *map(str, args)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)

    return start
