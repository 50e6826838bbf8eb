"""The `linear` toy model in Python, for the `python` model's tests: called with
{"intercept": a, "slope": b}, returns y = a + b t for t = 0..20. It fails for
parts of the prior that the sampler reaches from toy_python.toml's start: it
raises for intercept > 1.62 and returns NaN for slope > 0.345; `line_hang` hangs
instead of raising (for timeouts) and `line_slow` takes 2 ms more per call."""

import time

TIMES = [float(t) for t in range(21)]


def line(p):
    a, b = p["intercept"], p["slope"]
    if a > 1.62:
        raise ValueError(f"intercept {a} is out of this model's range")
    if b > 0.345:
        return {"time": TIMES, "y": [float("nan")] * len(TIMES)}
    return {"time": TIMES, "y": [a + b * t for t in TIMES]}


def line_hang(p):
    if p["intercept"] > 1.62:
        time.sleep(30)
    return line(p)


def line_slow(p):
    time.sleep(0.002)
    return line(p)


if __name__ == "__main__":
    raise SystemExit("a worker must not run this block")
