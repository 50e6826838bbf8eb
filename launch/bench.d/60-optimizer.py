"""Side-by-side point-estimation figures: climcal's methods (rows read from
`bench_optimizer` on stdin) and scipy.optimize.minimize (L-BFGS-B, Nelder-Mead)
on the same Rosenbrock-5D objective, written in numpy here (the Python
extension is not used, so the two sides do not share an evaluation path).

Each side reports evaluations until the cost is within TOL of the minimum and
the wall time to get there (median of REPEATS runs). scipy's L-BFGS-B uses its
default forward-difference gradient (n+1 evaluations); climcal's L-BFGS uses
central differences (2n evaluations), batched through the executor.
"""

import sys
import time

import numpy as np

DIM = 5
TOL = 1e-6
REPEATS = 5
X0 = np.array([-1.2 if i % 2 == 0 else 1.0 for i in range(DIM)])


def rosen(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def scipy_rows():
    try:
        import scipy
        from scipy.optimize import minimize
    except ImportError:
        print("# scipy not installed: climcal rows only", file=sys.stderr)
        return []
    rows = []
    cases = [
        ("L-BFGS-B", dict(method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-10, maxiter=10000, maxfun=100000))),
        ("L-BFGS-B 3-point", dict(method="L-BFGS-B", jac="3-point", options=dict(ftol=1e-15, gtol=1e-10, maxiter=10000, maxfun=100000))),
        ("Nelder-Mead", dict(method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000, maxfev=20000))),
    ]
    for name, kw in cases:
        times, times_tol = [], []
        for _ in range(REPEATS):
            state = {"n": 0, "hit": None, "t_hit": None}
            t0 = time.perf_counter()

            def f(x):
                state["n"] += 1
                c = rosen(x)
                if c <= TOL and state["hit"] is None:
                    state["hit"] = state["n"]
                    state["t_hit"] = (time.perf_counter() - t0) * 1e3
                return c

            res = minimize(f, X0, **kw)
            times.append((time.perf_counter() - t0) * 1e3)
            if state["t_hit"] is not None:
                times_tol.append(state["t_hit"])
        rows.append(
            {
                "impl": f"scipy {scipy.__version__}",
                "method": name,
                "evals_to_tol": state["hit"],
                "total_evals": state["n"],
                "ms_to_tol": float(np.median(times_tol)) if times_tol else None,
                "ms_total": float(np.median(times)),
                "final_cost": float(res.fun),
            }
        )
    return rows


def climcal_rows(lines):
    rows = []
    for line in lines:
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 7 or parts[0] == "impl":
            continue
        num = lambda s, t: None if s == "-" else t(s)
        rows.append(
            {
                "impl": parts[0],
                "method": parts[1],
                "evals_to_tol": num(parts[2], int),
                "total_evals": int(parts[3]),
                "ms_to_tol": num(parts[4], float),
                "ms_total": float(parts[5]),
                "final_cost": float(parts[6]),
            }
        )
    return rows


def main():
    rows = climcal_rows(sys.stdin) if not sys.stdin.isatty() else []
    rows += scipy_rows()
    fmt = lambda v, f: "-" if v is None else format(v, f)
    print(f"Rosenbrock-{DIM}D from x0 = {X0.tolist()}: evaluations and time until cost <= {TOL:g}")
    print(f"{'implementation':<14} {'method':<18} {'evals→tol':>10} {'evals':>8} {'ms→tol':>9} {'ms total':>9} {'final cost':>11}")
    for r in rows:
        print(
            f"{r['impl']:<14} {r['method']:<18} {fmt(r['evals_to_tol'], 'd'):>10} {r['total_evals']:>8d} "
            f"{fmt(r['ms_to_tol'], '.3f'):>9} {r['ms_total']:>9.3f} {r['final_cost']:>11.2e}"
        )
    # Ratios against scipy for the matching methods.
    ref = [("lbfgs", "L-BFGS-B"), ("lbfgs", "L-BFGS-B 3-point"), ("nelder-mead", "Nelder-Mead")]
    by = {r["method"]: r for r in rows}
    print("\nclimcal / scipy (same method, same objective, same start):")
    for ours, theirs in ref:
        a, b = by.get(ours), by.get(theirs)
        if not a or not b or a["evals_to_tol"] is None or b["evals_to_tol"] is None:
            print(f"  {ours:<12} vs {theirs:<17}: n/a")
            continue
        ev = a["evals_to_tol"] / b["evals_to_tol"]
        tm = a["ms_to_tol"] / b["ms_to_tol"] if a["ms_to_tol"] and b["ms_to_tol"] else float("nan")
        print(f"  {ours:<12} vs {theirs:<17}: evaluations ×{ev:.2f}, time to tolerance ×{tm:.4f}")


if __name__ == "__main__":
    main()
