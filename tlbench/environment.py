"""What a run ran on: versions, CPU, GPUs, git commit, command line.

No TensorFlow import: package versions come from installed metadata.
"""

from __future__ import annotations

import platform
import shlex
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

from tlbench import run_env

PACKAGES = ("tensorflow", "tensorflow-hub", "tf-keras", "ray", "rich", "psutil", "numpy")


def host() -> str:
    return socket.gethostname()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str | None]:
    from tlbench import __version__

    # tlbench's own from the code that runs (an editable install's metadata can lag).
    versions: dict[str, str | None] = {"python": platform.python_version(), "tlbench": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def local_gpu_names() -> list[str]:
    """GPU names from nvidia-smi, or [] where there is none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def git_commit() -> run_env.Git:
    """The commit of the tlbench checkout in use, if it is one."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(dirty)}


def machine_fields(argv, cluster: run_env.Cluster) -> run_env.RunEnv:
    """env.json's fields about the machine (the driver adds the run's)."""
    return {
        "versions": package_versions(),
        "host": host(),
        "platform": platform.platform(),
        "cpu": {
            "model": cpu_model(),
            "logical_cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": local_gpu_names(),
        "cluster": cluster,
        "git": git_commit(),
        "command": shlex.join([sys.executable, "-m", "tlbench", *argv]),
    }
