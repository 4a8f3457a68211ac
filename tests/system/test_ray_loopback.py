"""What tlbench exposes: a local Ray, as `run` starts it, listens on loopback
only, with no dashboard."""

import json
import subprocess
import sys

LOOPBACK_PROBE = """
import json
import psutil
from tlbench.driver import cluster

info = cluster.connect(None)  # a local Ray, as `run` starts it
import ray

nodes = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
listening = set()
for proc in psutil.Process().children(recursive=True):  # this Ray's processes, not another test's
    try:
        listening |= {(c.laddr.ip, c.laddr.port) for c in proc.net_connections("inet") if c.status == "LISTEN"}
    except psutil.Error:
        pass
cluster.release(info)
print(json.dumps({"nodes": nodes, "listening": sorted(listening)}))
"""


def test_a_local_ray_listens_on_loopback_only_with_no_dashboard():
    done = subprocess.run(
        [sys.executable, "-c", LOOPBACK_PROBE], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["nodes"] == ["127.0.0.1"]
    assert seen["listening"], "no Ray socket found"
    for ip, port in seen["listening"]:
        assert ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), (ip, port)
        assert port != 8265  # Ray's dashboard
