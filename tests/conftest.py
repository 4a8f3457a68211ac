"""Shared test fixtures: real small things, no mocks.

- `tiny_module`: a tiny TF2 SavedModel (conv + BatchNorm + pooling) built here
  and loaded through hub.KerasLayer exactly like a TF Hub module.
- `shared_module`: Google's real TF1 Hub module in ../shared/models/.
- Caches (stand-ins, TF Hub) live in this session's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import tlbench  # noqa: F401 - sets TF_USE_LEGACY_KERAS before any TensorFlow import

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODULE = ROOT.parent / "shared" / "models" / "mobilenet_v2_035_128_feature_vector_2"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    # Every test and every subprocess it starts (Ray workers included) sees
    # these caches, never the user's.
    cache = Path(tempfile.mkdtemp(prefix="tlbench-tests-"))
    config._tlbench_cache = cache
    os.environ["TLBENCH_CACHE_DIR"] = str(cache / "tlbench")
    os.environ["TFHUB_CACHE_DIR"] = str(cache / "tfhub")


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_tlbench_cache", ""), ignore_errors=True)


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

    def run(*args, timeout=600, env=None):
        return subprocess.run(
            [sys.executable, "-c", wrapper, *map(str, args)],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    return run
