"""A 1 ms CPU-bound Python model for the Python-model scaling benchmark
(launch/bench.d/45-python-model.sh): the `linear` toy model, y = a + b t for
t = 0..20, after a 1 ms busy loop (a real model computes; sleeping would scale
for free)."""

import time

TIMES = [float(t) for t in range(21)]


def line_1ms(p):
    end = time.perf_counter() + 1e-3
    while time.perf_counter() < end:
        pass
    return {"time": TIMES, "y": [p["intercept"] + p["slope"] * t for t in TIMES]}
