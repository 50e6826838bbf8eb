#!/usr/bin/env python3
"""Generate reference values for climcal's diagnostics.

Writes ``diagnostics_refs.json`` next to this file: for each case the input array
(shape ``(steps, walkers, dim)``, emcee's layout), emcee's
``autocorr.integrated_time(x, c=5, tol=50, quiet=True)`` (and whether it would have
raised ``AutocorrError``), and per parameter ArviZ's ``rhat(method="rank")`` and
``ess(method="bulk")`` of ``x[:, :, d].T`` (walkers as chains, shape
``(chains, draws)``). Also scipy's ``norm.ppf`` at a few probabilities, to check the
normal quantile climcal uses.

Run from the repository root with emcee 3.1.6 and ArviZ 0.23 installed
(``launch/install-deps`` installs them)::

    python3 tests/reference/gen_diagnostics_refs.py

``tests/diagnostics.rs`` asserts agreement to 1e-8 relative. All inputs are drawn
from fixed seeds, so rerunning the script reproduces the file.
"""

import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import arviz as az  # noqa: E402
import emcee  # noqa: E402
import scipy  # noqa: E402
from scipy import stats  # noqa: E402


def ar1(rng, a, steps, walkers, dim):
    """AR(1) series x_t = a x_{t-1} + e_t per walker and parameter, started in equilibrium."""
    x = np.empty((steps, walkers, dim))
    x[0] = rng.normal(size=(walkers, dim)) / np.sqrt(1 - a * a)
    e = rng.normal(size=(steps, walkers, dim))
    for t in range(1, steps):
        x[t] = a * x[t - 1] + e[t]
    return x


def cases():
    out = []
    rng = np.random.default_rng(20240101)
    out.append(("iid_normal", rng.normal(size=(1000, 6, 2))))
    for a, seed in [(0.5, 1), (0.9, 2), (0.99, 3)]:
        r = np.random.default_rng(seed)
        out.append((f"ar1_a{a}", ar1(r, a, 2500, 4, 1)))
    r = np.random.default_rng(7)
    x = r.normal(size=(500, 6, 2))
    x[:, 0, :] += 3.0  # one walker shifted by 3 sigma: R-hat must flag it
    out.append(("one_walker_shifted", x))
    r = np.random.default_rng(11)
    out.append(("heavy_tails", r.standard_cauchy(size=(300, 4, 1))))
    r = np.random.default_rng(13)
    # ties: integer values exercise the average ranks
    out.append(("ties", np.round(r.normal(size=(200, 4, 1)) * 2.0)))
    r = np.random.default_rng(17)
    out.append(("odd_101x5x2", ar1(r, 0.7, 101, 5, 2)))
    r = np.random.default_rng(19)
    out.append(("small_7x3x1", r.normal(size=(7, 3, 1))))
    r = np.random.default_rng(23)
    out.append(("tiny_4x2x1", r.normal(size=(4, 2, 1))))
    r = np.random.default_rng(29)
    out.append(("short_9x4x1", r.normal(size=(9, 4, 1))))
    r = np.random.default_rng(31)
    out.append(("trend_250x4x1", np.cumsum(r.normal(size=(250, 4, 1)), axis=0)))
    # Inputs are rounded to 6 decimals so that the JSON stays small; the reference
    # values are computed from the rounded arrays, which the JSON holds exactly.
    return [(name, np.round(x, 6)) for name, x in out]


def nan_to_none(v):
    v = float(v)
    return None if np.isnan(v) else v


def main():
    records = []
    for name, x in cases():
        tau_raised = False
        try:
            emcee.autocorr.integrated_time(x, c=5, tol=50)
        except emcee.autocorr.AutocorrError:
            tau_raised = True
        tau = emcee.autocorr.integrated_time(x, c=5, tol=50, quiet=True)
        rhat = [nan_to_none(az.rhat(np.ascontiguousarray(x[:, :, d].T), method="rank")) for d in range(x.shape[2])]
        ess = [nan_to_none(az.ess(np.ascontiguousarray(x[:, :, d].T), method="bulk")) for d in range(x.shape[2])]
        records.append(
            {
                "name": name,
                "shape": list(x.shape),
                "x": x.ravel().tolist(),
                "integrated_time": [nan_to_none(t) for t in tau],
                "autocorr_error": tau_raised,
                "rhat": rhat,
                "ess_bulk": ess,
            }
        )
    p = [1e-9, 1e-6, 0.3 / 8000, 0.001, 0.02, 0.2, 0.4999, 0.5, 0.6, 0.97, 0.999, 1 - 1e-6]
    doc = {
        "generator": "tests/reference/gen_diagnostics_refs.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "emcee": emcee.__version__,
            "arviz": az.__version__,
            "numba": "not installed (ArviZ uses numpy's var)",
        },
        "norm_ppf": {"p": p, "z": stats.norm.ppf(p).tolist()},
        "cases": records,
    }
    try:
        import numba  # noqa: F401

        doc["versions"]["numba"] = numba.__version__
    except ImportError:
        pass
    path = Path(__file__).with_name("diagnostics_refs.json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path} ({len(records)} cases)")


if __name__ == "__main__":
    main()
