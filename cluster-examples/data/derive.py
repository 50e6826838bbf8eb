"""Derive the calibration targets in `derived/` from the verbatim source files here.

Run from anywhere: `python3 cluster-examples/data/derive.py` (standard library only).
The outputs are committed; this script documents exactly how they were made.

- `derived/hadcrut5_gmst_1850-2024.csv`: HadCRUT5 5.1.0.0 global annual anomaly
  (1961-1990 base, as published; the calibration re-baselines to 1850-1900),
  years 1850-2024, with `sigma_obs` = (upper - lower) / (2 * 1.959964) from the 95 %
  range and `sigma` = sqrt(sigma_obs**2 + SIGMA_IV**2). SIGMA_IV = 0.10 K is the
  year-to-year internal variability a deterministic energy-balance model cannot
  reproduce (ENSO etc.): the standard deviation of HadCRUT5 about its own centred
  21-year running mean is 0.099 K (0.093 K for 11 years, 0.106 K for 31 years).
- `derived/ohc_full_depth_1971-2023_5yr.csv`: AR6 / IGCC 2023 full-depth ocean heat
  content change (ZJ, relative to the 1971 average) with its 1-sigma, every fifth
  year 1971-2021 plus 2023. Years are calendar years: the source's mid-year labels
  (1971.5) become 1971. Every fifth year only, because the errors of a cumulative
  heat-content series are strongly correlated from year to year; 53 annual values
  treated as independent would weigh the OHC record about five times too much.
"""

import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SIGMA_IV = 0.10
Z95 = 1.959963984540054


def main():
    os.makedirs(os.path.join(HERE, "derived"), exist_ok=True)
    src = os.path.join(HERE, "HadCRUT.5.1.0.0.analysis.summary_series.global.annual.csv")
    with open(src, newline="") as f, open(os.path.join(HERE, "derived", "hadcrut5_gmst_1850-2024.csv"), "w", newline="") as g:
        w = csv.writer(g, lineterminator="\n")
        w.writerow(["year", "gmst", "sigma_obs", "sigma"])
        for row in csv.DictReader(f):
            year = int(float(row["Time"]))
            if not 1850 <= year <= 2024:
                continue
            lo = float(row["Lower confidence limit (2.5%)"])
            hi = float(row["Upper confidence limit (97.5%)"])
            s_obs = (hi - lo) / (2 * Z95)
            s = math.sqrt(s_obs**2 + SIGMA_IV**2)
            w.writerow([year, row["Anomaly (deg C)"], f"{s_obs:.6f}", f"{s:.6f}"])

    src = os.path.join(HERE, "AR6_OHC_ensemble_IGCC_update_2024-04-13.csv")
    with open(src, newline="") as f, open(os.path.join(HERE, "derived", "ohc_full_depth_1971-2023_5yr.csv"), "w", newline="") as g:
        next(f)  # free-text description line
        w = csv.writer(g, lineterminator="\n")
        w.writerow(["year", "ohc", "sigma"])
        for row in csv.DictReader(f):
            year = int(math.floor(float(row["Year"])))
            if (year - 1971) % 5 == 0 or year == 2023:
                w.writerow([year, row["Central Estimate Full-depth"], row["Full-depth Uncertainty (1-sigma)"]])

    # abrupt-4xCO2: tas and N = rsdt - rsut - rlut for the first 150 years (index 0
    # = first year after quadrupling), with sigma_T / sigma_N from the series' own
    # year-to-year variability (std of residuals about a centred 11-year running mean,
    # years 10-144, times sqrt(11/10)), as in examples/validate_4xco2.rs.
    d = os.path.join(HERE, "cmip6_abrupt-4xCO2")
    for fn in sorted(os.listdir(d)):
        model = fn.split("_")[0]
        with open(os.path.join(d, fn), newline="") as f:
            rows = list(csv.DictReader(f))[:150]
        tas = [float(r["tas"]) for r in rows]
        n = [float(r["rsdt"]) - float(r["rsut"]) - float(r["rlut"]) for r in rows]
        st, sn = _noise(tas), _noise(n)
        with open(os.path.join(HERE, "derived", f"abrupt-4xCO2_{model}.csv"), "w", newline="") as g:
            w = csv.writer(g, lineterminator="\n")
            w.writerow(["year", "tas", "N", "sigma_T", "sigma_N"])
            for i in range(len(rows)):
                w.writerow([i, repr(tas[i]), repr(n[i]), f"{st:.6f}", f"{sn:.6f}"])


def _noise(x, w=5):
    r = [x[i] - sum(x[i - w:i + w + 1]) / (2 * w + 1) for i in range(10, len(x) - w)]
    m = sum(r) / len(r)
    v = sum((a - m) ** 2 for a in r) / (len(r) - 1)
    return math.sqrt(v * (2 * w + 1) / (2 * w))


if __name__ == "__main__":
    main()
