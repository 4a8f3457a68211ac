"""The peak-FLOP/s probe: a timed float32 matmul on TensorFlow's CPU device."""


def test_matmul_probe_measures_a_plausible_peak():
    from tlbench.worker.measure import matmul_peak_flops

    flops, method = matmul_peak_flops("CPU:0", seconds=0.1)
    assert 1e9 < flops < 1e14  # one core of any CPU of the last 20 years, up to a large server
    assert method.startswith("matmul-probe:CPU:0:float32:2048x2048")
