#!/usr/bin/env bash
# Two-layer model cost: climcal (Rust, exact annual propagator) next to the same
# model in NumPy/Python (same exact propagator, a Python loop over years) and
# scipy's solve_ivp (adaptive RK45 on the ODEs), 1750–2024 historical forcing.
# Prints a table; a missing competitor is reported as "n/a", never a failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/examples/calibrate_hadcrut5
[ -x "$bin" ] || cargo build --release --example calibrate_hadcrut5 2>&1 | tail -1
rust=$("$bin" --timing 2>/dev/null) || { echo "climcal timing failed"; exit 1; }
python3 - "$rust" <<'PY'
import sys, time, csv, math
vals = dict(l.split() for l in sys.argv[1].strip().splitlines())
r_run, r_build, r_lp = (float(vals[k]) for k in ("rust_run_us", "rust_build_us", "rust_lnprob_us"))
rows = list(csv.DictReader(open("cluster-examples/data/ERF_best_aggregates_1750-2024.csv")))
F = [float(r["total"]) for r in rows]
lam, C, Cd, g, e = 1.2, 8.0, 100.0, 0.6, 1.3
def py_run():
    try:
        import numpy as np, scipy.linalg as sl
    except ImportError:
        return None
    A = np.array([[-(lam + e * g) / C, e * g / C], [g / Cd, -g / Cd]])
    P = sl.expm(A); Ai = np.linalg.inv(A); R = Ai @ (P - np.eye(2)); b = np.array([1 / C, 0.0])
    q = R @ b; s = Ai @ (R - np.eye(2)) @ b
    x = np.zeros(2); T = np.empty(len(F))
    for i, f in enumerate(F):
        T[i] = (R @ x + s * f)[0]
        x = P @ x + q * f
    return T
def ivp_run():
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        return None
    def rhs(t, x):
        f = F[min(int(t), len(F) - 1)]
        return [(f - lam * x[0] - e * g * (x[0] - x[1])) / C, g * (x[0] - x[1]) / Cd]
    return solve_ivp(rhs, (0, len(F)), [0.0, 0.0], max_step=1.0).y
def timeit(f, n):
    if f() is None:
        return None
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n * 1e6
py = timeit(py_run, 20)
ivp = timeit(ivp_run, 3)
fmt = lambda v: "n/a" if v is None else f"{v:,.1f}"
ratio = lambda v: "n/a" if v is None else f"{v / r_run:,.0f}x"
print(f"{'two-layer model, 1750-2024 (275 years)':44s} {'µs/run':>12s} {'vs climcal':>11s}")
print(f"{'climcal TwoLayerModel::run':44s} {r_run:12.2f} {'1x':>11s}")
print(f"{'NumPy exact propagator, Python loop':44s} {fmt(py):>12s} {ratio(py):>11s}")
print(f"{'scipy solve_ivp RK45 (max_step 1 yr)':44s} {fmt(ivp):>12s} {ratio(ivp):>11s}")
print()
print(f"climcal model construction (forcing shared): {r_build:.2f} µs")
print(f"climcal whole posterior ln p (prior + model + likelihood, 187 points): {r_lp:.2f} µs (target < 5 µs)")
print(f"build a model per evaluation: {r_build + r_lp:.2f} µs per ln p (question: < ~10 µs?)")
PY
