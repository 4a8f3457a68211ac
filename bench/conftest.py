import os

import tlbench  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow

# Under tox the tests' shared cache (tests/conftest.py) serves the benchmarks
# too: the stand-ins and graph counts the tests made are not made again.
# Elsewhere the benchmarks use tlbench's cache, as a run does.
if os.environ.get("TLBENCH_TEST_CACHE"):
    os.environ["TLBENCH_CACHE_DIR"] = os.path.join(os.environ["TLBENCH_TEST_CACHE"], "tlbench")
