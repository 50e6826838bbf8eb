#!/usr/bin/env bash
# Proposal moves side by side: log-density evaluations per second of climcal's
# moves (Rust, through the Python API) and emcee 3.1's on the same problem: a
# cheap NumPy log-prob of a 5-D standard normal, 32 walkers, 2000 steps, plain
# (one call per walker) and vectorize=True. DIME has no emcee 3.1.6 counterpart.
# Needs the climcal wheel installed (launch/bench.d/50-python.sh builds it) and
# emcee; a missing one is reported, not fatal. PYTHON= picks the interpreter.
set -uo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$py" - <<'PY'
import sys, time
import numpy as np
try:
    import climcal
    from climcal import moves as CM
except ImportError as e:
    print(f"# climcal not installed: {e}"); sys.exit(0)
try:
    import emcee
    from emcee import moves as EM
except ImportError:
    emcee = None

ndim, nw, steps = 5, 32, 2000
lp = lambda x: -0.5 * float(x @ x)
lpv = lambda x: -0.5 * np.einsum("ij,ij->i", x, x)
cases = [
    ("StretchMove", CM.StretchMove(randomize_split=True), lambda: EM.StretchMove()),
    ("DEMove", CM.DEMove(), lambda: EM.DEMove()),
    ("DESnookerMove", CM.DESnookerMove(), lambda: EM.DESnookerMove()),
    ("KDEMove", CM.KDEMove(), lambda: EM.KDEMove()),
    ("GaussianMove", CM.GaussianMove(0.5), lambda: EM.GaussianMove(0.5)),
    ("DE 0.8 + snooker 0.2", [(CM.DEMove(), 0.8), (CM.DESnookerMove(), 0.2)],
     lambda: [(EM.DEMove(), 0.8), (EM.DESnookerMove(), 0.2)]),
    ("DIMEMove", CM.DIMEMove(), None),
]
def best(f, n=3):
    return min(f() for _ in range(n))
def t_climcal(m, vec):
    def go():
        s = climcal.EnsembleSampler(log_prob_fn=lpv if vec else lp, ndim=ndim, n_walkers=nw, seed=1, moves=m, vectorize=vec)
        st = s.initialize("ball", center=[0.0] * ndim, radius=1.0)
        t0 = time.perf_counter(); s.run(st, n_steps=steps, progress=False); return time.perf_counter() - t0
    return best(go)
def t_emcee(mk, vec):
    def go():
        rs = np.random.RandomState(1)
        s = emcee.EnsembleSampler(nw, ndim, lpv if vec else lp, moves=mk(), vectorize=vec)
        s._random = rs
        p0 = rs.randn(nw, ndim)
        t0 = time.perf_counter(); s.run_mcmc(p0, steps, progress=False); return time.perf_counter() - t0
    return best(go)
ev = nw * steps
print(f"# climcal {climcal.__version__}, emcee {emcee.__version__ if emcee else 'missing'}, numpy {np.__version__}; "
      f"{ndim}-D normal, {nw} walkers x {steps} steps, best of 3, evals/s")
print(f"{'move':24s} {'climcal':>10s} {'emcee':>10s} {'ratio':>7s} | {'climcal vec':>11s} {'emcee vec':>10s} {'ratio':>7s}")
for name, cm, em in cases:
    row = [name]
    for vec in (False, True):
        c = ev / t_climcal(cm, vec)
        e = ev / t_emcee(em, vec) if (emcee and em) else float("nan")
        row += [c, e, c / e]
    print(f"{row[0]:24s} {row[1]:10.0f} {row[2]:10.0f} {row[3]:7.1f} | {row[4]:11.0f} {row[5]:10.0f} {row[6]:7.1f}")
PY
