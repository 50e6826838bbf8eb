#!/usr/bin/env bash
# climcal.emcee against emcee: the same script with `import emcee` and with
# `import climcal.emcee as emcee` (the module is the only difference), evals/s
# side by side from one run, best of 3 interleaved repeats:
#   1. a cheap NumPy log-prob (5-D standard normal, 32 walkers, 2000 steps),
#      one call per walker and vectorize=True;
#   2. a 20 µs model (busy wait, 64 walkers x 10 params, 300 steps) in memory and
#      with an HDF5 backend (emcee's writes at every step; climcal.emcee's, written
#      by Rust, batches the steps of each second into one write);
#   3. the same with a write at every step on both sides: `sample()` stepped in a
#      loop (as emcee's convergence-monitoring recipe) and climcal.emcee's
#      HDFBackend(flush_interval=0) (emcee's has no such argument: it always
#      writes every step).
#   4. the cheap log-prob again: vectorised and driven by the `sample()` generator
#      (one state per step), vectorised with a DE (0.8) + DE-snooker (0.2) mixture,
#      and per walker with two blobs (`return lp, x[0], x[1]`).
# Needs the climcal wheel installed (launch/bench.d/50-python.sh builds it) and
# emcee; a missing one is reported, not fatal. PYTHON= picks the interpreter.
# HDF_BEFORE=<git revision> adds a column for the HDF cases: climcal.emcee with
# the HDFBackend (python/climcal/emcee/backends/hdf.py) of that revision, in the
# same run (e.g. a revision before a change of the backend).
set -uo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
before=""
if [ -n "${HDF_BEFORE:-}" ]; then
    before="$(mktemp -d)/hdf_before.py"
    git show "$HDF_BEFORE:python/climcal/emcee/backends/hdf.py" > "$before" || exit 1
fi
HDF_BEFORE_FILE="$before" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$py" - <<'PY'
import importlib.util, os, sys, tempfile, time
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
old_hdf = None
if os.environ.get("HDF_BEFORE_FILE"):
    import climcal.emcee.ensemble as ensemble_mod
    spec = importlib.util.spec_from_file_location("climcal.emcee.backends._hdf_before", os.environ["HDF_BEFORE_FILE"])
    old_hdf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old_hdf)

def lpb(x):
    return -0.5 * float(x @ x), x[0], x[1]

def script(em, case):
    """The user's script: only `em` (the emcee module) differs (and, for
    "20us-hdf-every", climcal.emcee's flush_interval=0)."""
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
        if case in ("20us-hdf", "20us-hdf-every"):
            fn = os.path.join(tmp, "chain.h5")
            if os.path.exists(fn):
                os.remove(fn)
            kw = {"flush_interval": 0} if case == "20us-hdf-every" and em is not emcee else {}
            be = em.backends.HDFBackend(fn, **kw)
            be.reset(nw, ndim)
        s = em.EnsembleSampler(nw, ndim, lp20, backend=be)
    t0 = time.perf_counter()
    if case in ("20us-mem-loop", "20us-hdf-every"):
        for _ in s.sample(p0, iterations=steps, progress=False):
            pass
    else:
        s.run_mcmc(p0, steps, progress=False)
    wall = time.perf_counter() - t0
    assert s.get_chain().shape == (steps, nw, ndim)
    if case == "blobs":
        assert s.get_blobs().shape == (steps, nw, 2)
    return nw * steps / wall


class Before:
    """climcal.emcee with the HDFBackend of revision HDF_BEFORE (the sampler sees it
    as its own backend class, as it does the current one)."""

    def __getattr__(self, k):
        return getattr(cemcee, k)

    class backends:
        HDFBackend = None

    def EnsembleSampler(self, *a, **kw):
        ensemble_mod.HDFBackend = old_hdf.HDFBackend
        return cemcee.EnsembleSampler(*a, **kw)


def timed(name, mod, c):
    try:
        return script(mod, c)
    finally:
        if name == "before":
            ensemble_mod.HDFBackend = cemcee.backends.HDFBackend


cases = ["plain", "vectorised", "20us-mem", "20us-hdf", "20us-mem-loop", "20us-hdf-every", "sample", "mixture", "blobs"]
hdf_cases = ("20us-hdf", "20us-hdf-every")
mods = [("emcee", emcee), ("climcal", cemcee)]
if old_hdf is not None:
    Before.backends.HDFBackend = old_hdf.HDFBackend
    mods.append(("before", Before()))
res = {c: {"emcee": 0.0, "climcal": 0.0, "before": 0.0} for c in cases}
for _ in range(3):
    for c in cases:
        for name, mod in mods:
            if name != "before" or c in hdf_cases:
                res[c][name] = max(res[c][name], timed(name, mod, c))
print(f"# emcee {emcee.__version__} vs climcal.emcee (climcal {__import__('climcal').__version__}), numpy "
      f"{np.__version__}; evals/s, best of 3")
print(f"{'case':34s} {'emcee':>10s} {'climcal.emcee':>14s} {'ratio':>6s}")
labels = {"plain": "cheap log-prob, per walker", "vectorised": "cheap log-prob, vectorize=True",
          "20us-mem": "20 µs model, in memory", "20us-hdf": "20 µs model, HDFBackend",
          "20us-mem-loop": "20 µs, sample() loop, in memory", "20us-hdf-every": "20 µs, sample() loop, HDF every step",
          "sample": "cheap, vectorised, sample() loop", "mixture": "cheap, vectorised, DE+snooker",
          "blobs": "cheap, per walker, 2 blobs"}
for c in cases:
    e, k, b = res[c]["emcee"], res[c]["climcal"], res[c]["before"]
    extra = f"   HDFBackend at {os.environ.get('HDF_BEFORE', '')}: {b:.0f} ({k / b:.2f}x)" if b else ""
    print(f"{labels[c]:34s} {e:10.0f} {k:14.0f} {k / e:6.2f}{extra}")
for name in ("emcee", "climcal"):
    m, h = res["20us-mem"][name], res["20us-hdf"][name]
    print(f"HDF backend cost, {name:8s}: {100 * (m / h - 1):+.0f} % run time over in-memory")
    m, h = res["20us-mem-loop"][name], res["20us-hdf-every"][name]
    print(f"HDF backend cost, {name:8s}, a write every step: {100 * (m / h - 1):+.0f} % run time over in-memory")
if old_hdf is not None:
    for c, m in (("20us-hdf", "20us-mem"), ("20us-hdf-every", "20us-mem-loop")):
        print(f"HDF backend cost, before  ({c}): {100 * (res[m]['climcal'] / res[c]['before'] - 1):+.0f} % run time")
PY
