"""The table of docs/ensemble.md from a finished fair-style ensemble file:
median [5-95 %] of each constrained quantity in the prior, after the RMSE filter,
histogram-weighted, in the drawn members and likelihood-weighted (the posterior
of the run file's likelihood by importance sampling), with the ensemble's
effective sample sizes.

    climcal ensemble cluster-examples/two-layer-fair-style.toml -o fair.h5
    python3 cluster-examples/fair-style-table.py fair.h5
"""

import sys

import numpy as np

import climcal

ens = climcal.load_ensemble(sys.argv[1])
ok = np.isfinite(ens.loglike)
wl = np.where(ok, np.exp(ens.loglike - ens.loglike[ok].max()), 0.0)
print(
    f"{ens.committed} members, {ens.passed.sum()} pass the filters, Kish ESS {ens.ess:.1f}, "
    f"fair-calibrate ESS {ens.ess_fair:.0f}, {ens.drawn.size} drawn; likelihood weights: Kish ESS {climcal.kish_ess(wl):.1f}"
)
q = [0.5, 0.05, 0.95]
print("| quantity | prior | RMSE filter | histogram-weighted | drawn | likelihood-weighted |")
print("|---|---|---|---|---|---|")
for name in ["ECS", "TCR", "aerosol_ERF_2005-2014", "ohc_1971_2020", "gsat_2003_2022"]:
    x = ens.column(name)
    cols = [
        climcal.weighted_quantile(x[ok], q),
        climcal.weighted_quantile(x[ens.passed], q),
        climcal.weighted_quantile(x, q, ens.weights),
        climcal.weighted_quantile(x[ens.drawn], q),
        climcal.weighted_quantile(x[ok], q, wl[ok]),
    ]
    print(f"| {name} | " + " | ".join(f"{m:.3g} [{lo:.3g}–{hi:.3g}]" for m, lo, hi in cols) + " |")
