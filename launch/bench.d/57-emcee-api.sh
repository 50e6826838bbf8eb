#!/usr/bin/env bash
# climcal.emcee against emcee: the same script with `import emcee` and with
# `import climcal.emcee as emcee` (the module is the only difference), evals/s
# side by side from one run, best of 3 interleaved repeats:
#   1. a cheap NumPy log-prob (5-D standard normal, 32 walkers, 2000 steps),
#      one call per walker and vectorize=True;
#   2. a 20 µs model (busy wait, 64 walkers x 10 params, 300 steps) in memory and
#      with an HDF5 backend (emcee's writes at every step; climcal.emcee's batches
#      the steps of each second into one write);
#   3. the cheap log-prob again: vectorised and driven by the `sample()` generator
#      (one state per step), vectorised with a DE (0.8) + DE-snooker (0.2) mixture,
#      and per walker with two blobs (`return lp, x[0], x[1]`).
# Needs the climcal wheel installed (launch/bench.d/50-python.sh builds it) and
# emcee; a missing one is reported, not fatal. PYTHON= picks the interpreter.
set -uo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$py" - <<'PY'
import os, sys, tempfile, time
import numpy as np
try:
    import climcal.emcee as cemcee
except ImportError as e:
    print(f"# climcal not installed: {e}"); sys.exit(0)
try:
    import emcee
except ImportError:
    print("# emcee not installed: no comparison"); sys.exit(0)

def lp(x):
    return -0.5 * float(x @ x)

def lpv(x):
    return -0.5 * np.einsum("ij,ij->i", x, x)

def lp20(x):
    t = time.perf_counter() + 20e-6
    while time.perf_counter() < t:
        pass
    return -0.5 * float(x @ x)

tmp = tempfile.mkdtemp()

def lpb(x):
    return -0.5 * float(x @ x), x[0], x[1]

def script(em, case):
    """The user's script: only `em` (the emcee module) differs."""
    if case in ("plain", "vectorised", "sample", "mixture", "blobs"):
        nw, ndim, steps = 32, 5, 2000
        np.random.seed(1)
        p0 = np.random.randn(nw, ndim)
        vec = case in ("vectorised", "sample", "mixture")
        moves = [(em.moves.DEMove(), 0.8), (em.moves.DESnookerMove(), 0.2)] if case == "mixture" else None
        s = em.EnsembleSampler(nw, ndim, lpv if vec else (lpb if case == "blobs" else lp), vectorize=vec,
                               moves=moves)
        if case == "sample":
            t0 = time.perf_counter()
            for _ in s.sample(p0, iterations=steps):
                pass
            wall = time.perf_counter() - t0
            assert s.get_chain().shape == (steps, nw, ndim)
            return nw * steps / wall
    else:
        nw, ndim, steps = 64, 10, 300
        np.random.seed(1)
        p0 = 0.1 * np.random.randn(nw, ndim)
        be = None
        if case == "20us-hdf":
            fn = os.path.join(tmp, "chain.h5")
            if os.path.exists(fn):
                os.remove(fn)
            be = em.backends.HDFBackend(fn)
            be.reset(nw, ndim)
        s = em.EnsembleSampler(nw, ndim, lp20, backend=be)
    t0 = time.perf_counter()
    s.run_mcmc(p0, steps, progress=False)
    wall = time.perf_counter() - t0
    assert s.get_chain().shape == (steps, nw, ndim)
    if case == "blobs":
        assert s.get_blobs().shape == (steps, nw, 2)
    return nw * steps / wall

cases = ["plain", "vectorised", "20us-mem", "20us-hdf", "sample", "mixture", "blobs"]
res = {c: {"emcee": 0.0, "climcal": 0.0} for c in cases}
for _ in range(3):
    for c in cases:
        for name, mod in (("emcee", emcee), ("climcal", cemcee)):
            res[c][name] = max(res[c][name], script(mod, c))
print(f"# emcee {emcee.__version__} vs climcal.emcee (climcal {__import__('climcal').__version__}), numpy "
      f"{np.__version__}; evals/s, best of 3")
print(f"{'case':34s} {'emcee':>10s} {'climcal.emcee':>14s} {'ratio':>6s}")
labels = {"plain": "cheap log-prob, per walker", "vectorised": "cheap log-prob, vectorize=True",
          "20us-mem": "20 µs model, in memory", "20us-hdf": "20 µs model, HDFBackend",
          "sample": "cheap, vectorised, sample() loop", "mixture": "cheap, vectorised, DE+snooker",
          "blobs": "cheap, per walker, 2 blobs"}
for c in cases:
    e, k = res[c]["emcee"], res[c]["climcal"]
    print(f"{labels[c]:34s} {e:10.0f} {k:14.0f} {k / e:6.2f}")
for name in ("emcee", "climcal"):
    m, h = res["20us-mem"][name], res["20us-hdf"][name]
    print(f"HDF backend cost, {name:8s}: {100 * (m / h - 1):+.0f} % run time over in-memory")
PY
