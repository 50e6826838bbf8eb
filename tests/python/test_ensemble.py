"""``climcal ensemble`` results against direct NumPy/SciPy computations on small
ensembles of the two-layer model: the filter, likelihood importance weights,
histogram matching (an independent implementation of fair-calibrate's algorithm
below, with target bins from scipy.stats), Kish's and fair-calibrate's effective
sample sizes, the seeded draw, weighted quantiles, and the readers and plots.

Needs the climcal binary (CLIMCAL_BIN, default target/debug/climcal)."""

import os
import pathlib
import subprocess

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

import climcal

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))
EXAMPLE = ROOT / "cluster-examples" / "two-layer-fair-style.toml"

pytestmark = pytest.mark.skipif(not os.path.exists(BIN), reason=f"no climcal binary at {BIN} (cargo build, or set CLIMCAL_BIN)")


def config(tmp_path, ensemble_section: str) -> pathlib.Path:
    """The fair-style example's priors, model and data with another [ensemble] section."""
    text = EXAMPLE.read_text()
    text = text[: text.index("[ensemble]")] + ensemble_section
    data = (ROOT / "cluster-examples" / "data").as_posix()
    text = text.replace('"data/', f'"{data}/')
    p = tmp_path / "ens.toml"
    p.write_text(text)
    return p


def run(cfg, out, *args):
    r = subprocess.run([BIN, "ensemble", str(cfg), "-o", str(out), "-q", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


HISTOGRAM = """
[ensemble]
members = 3000
sampling = "lhs"
seed = 17
batch = 700

[ensemble.outputs]
gsat = { variable = "Surface Temperature", mean = [2003, 2022], relative_to = [1850, 1900], unit = "K" }
ohc = { variable = "Ocean Heat Content", at = 2020, relative_to = [1971, 1971], unit = "ZJ" }

[[ensemble.filters]]
rmse = "Surface Temperature"
below = 0.25

[ensemble.targets]
gsat = { dist = "quantiles", q05 = 0.87, q50 = 1.03, q95 = 1.13, bins = 40 }
ohc = { dist = "normal", mean = 423.4, ci90 = 98.7, bins = 30 }

[ensemble.weighting]
method = "histogram"
iterations = 7

[ensemble.draw]
members = 200
seed = 5
"""


@pytest.fixture(scope="module")
def hist_ens(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hist")
    cfg = config(tmp, HISTOGRAM)
    out = tmp / "hist.h5"
    run(cfg, out)
    return cfg, out, climcal.load_ensemble(str(out))


def skewnorm_from_quantiles(q05, q50, q95):
    """fair-calibrate's fit: solve for (a, loc, scale) with scipy.optimize.root."""

    def opt(x):
        q = scipy.stats.skewnorm.ppf((0.05, 0.5, 0.95), x[0], loc=x[1], scale=x[2])
        return q - (q05, q50, q95)

    return scipy.optimize.root(opt, [1.0, q50, q95 - q05]).x


def numpy_histogram_weights(values, edges, target_probs, passed, iterations, reference=1e5):
    """fair-calibrate 1.6's calculate_sample_weights / get_unique_code_weights,
    written again here with numpy.digitize and a loop over bins."""
    w = passed.astype(float)
    names = list(values)
    for k in range(iterations):
        if k == iterations - 1:
            before_last = w.copy()
            to_average = []
        for name in names:
            idx = np.digitize(values[name], bins=edges[name])
            nb = len(edges[name]) - 1
            existing = np.array([w[idx == i + 1].sum() for i in range(nb)])
            target = reference * target_probs[name]
            f = np.zeros(nb + 2)
            for i in range(1, nb + 1):
                if target[i - 1] == 0:
                    f[i] = 0.0
                elif existing[i - 1] == 0:
                    f[i] = 1.0
                else:
                    f[i] = target[i - 1] / existing[i - 1]
            if k == iterations - 1:
                to_average.append(f[idx])
            w = w * f[idx]
    return before_last * np.vstack(to_average).mean(axis=0)


def test_filter_and_histogram_weights_match_an_independent_implementation(hist_ens):
    _, _, ens = hist_ens
    assert ens.committed == ens.n_members == 3000 and ens.method == "histogram"
    passed = np.isfinite(ens.loglike) & (ens.column("rmse:Surface Temperature") < 0.25)
    np.testing.assert_array_equal(ens.passed, passed)
    assert 200 < passed.sum() < 3000, "the filter must keep some and drop some"
    # Target bins: the stored probabilities are the targets' CDF differences over the
    # stored edges (scipy.stats; skew-normal fitted by scipy.optimize.root as
    # fair-calibrate does). Tolerance: the two fits agree to ~1e-7 in the quantiles.
    a, loc, scale = skewnorm_from_quantiles(0.87, 1.03, 1.13)
    cdfs = {
        "gsat": lambda x: scipy.stats.skewnorm.cdf(x, a, loc=loc, scale=scale),
        "ohc": lambda x: scipy.stats.norm.cdf(x, 423.4, 98.7 / scipy.stats.norm.ppf(0.95)),
    }
    for name, cdf in cdfs.items():
        t = ens.targets[name]
        np.testing.assert_allclose(t.probabilities, np.diff(cdf(t.edges)), atol=2e-7)
        lo, hi = (scipy.stats.skewnorm.ppf((1e-4, 1 - 1e-4), a, loc=loc, scale=scale) if name == "gsat"
                  else scipy.stats.norm.ppf((1e-4, 1 - 1e-4), 423.4, 98.7 / scipy.stats.norm.ppf(0.95)))
        np.testing.assert_allclose([t.edges[0], t.edges[-1]], [lo, hi], rtol=1e-6)
    # Weights: the same algorithm on the same bins, to rounding (the products of
    # 14 factors in another order differ in the last bits).
    values = {n: ens.column(n) for n in ("gsat", "ohc")}
    edges = {n: ens.targets[n].edges for n in values}
    probs = {n: ens.targets[n].probabilities for n in values}
    want = numpy_histogram_weights(values, edges, probs, passed, iterations=7)
    np.testing.assert_allclose(ens.weights, want, rtol=1e-10, atol=1e-12 * want.max())
    assert (ens.weights[~passed] == 0).all() and want.max() > 0
    # ESS: Kish's and fair-calibrate's.
    np.testing.assert_allclose(ens.ess, want.sum() ** 2 / (want**2).sum(), rtol=1e-10)
    assert ens.ess_fair == np.floor(np.minimum(want, 1).sum())
    assert climcal.kish_ess(ens.weights) == pytest.approx(ens.ess, rel=1e-12)
    # Matching works: the weighted distribution of each target quantity has the
    # target's median within a bin width (the prior's median is far off).
    for n in values:
        med = climcal.weighted_quantile(values[n], 0.5, ens.weights)
        t = ens.targets[n]
        target_median = np.interp(0.5, np.concatenate([[0], np.cumsum(t.probabilities)]) / t.probabilities.sum(), t.edges)
        assert abs(med - target_median) < 2 * np.diff(t.edges)[0], (n, med, target_median)


def test_the_draw_is_seeded_and_follows_the_weights(hist_ens, tmp_path):
    cfg, out, ens = hist_ens
    d = ens.drawn
    assert d.size == 200 and np.all(np.diff(d) > 0), "without replacement: unique, increasing"
    assert np.all(ens.weights[d] > 0)
    # Drawn members are heavier than average: E_draw[w] > E_passed[w] (size-biased).
    assert ens.weights[d].mean() > ens.weights[ens.passed].mean()
    # Re-applying the constraints to the finished file gives the same draw; another
    # draw seed another one.
    copy = tmp_path / "copy.h5"
    copy.write_bytes(pathlib.Path(out).read_bytes())
    run(cfg, copy, "--resume")
    np.testing.assert_array_equal(climcal.load_ensemble(str(copy)).drawn, d)
    cfg2 = tmp_path / "seed.toml"
    cfg2.write_text(cfg.read_text().replace("seed = 5", "seed = 6"))
    run(cfg2, copy, "--resume")
    assert not np.array_equal(climcal.load_ensemble(str(copy)).drawn, d)


def test_likelihood_weights_and_draw_with_replacement(tmp_path):
    section = HISTOGRAM.split("[[ensemble.filters]]")[0] + """
[ensemble.weighting]
method = "likelihood"
variables = ["Surface Temperature"]

[ensemble.draw]
members = 500
replace = true
seed = 3
"""
    out = tmp_path / "lik.h5"
    run(config(tmp_path, section.replace("members = 3000", "members = 1500")), out)
    ens = climcal.load_ensemble(str(out))
    ll = ens.column("loglike:Surface Temperature")
    ok = np.isfinite(ens.loglike)
    want = np.where(ok, np.exp(ll - ll[ok].max()), 0.0)
    np.testing.assert_allclose(ens.weights, want, rtol=1e-13, atol=0)
    # The per-variable log-likelihoods add up to the total.
    np.testing.assert_allclose(ens.loglike_by_variable.sum(axis=1), ens.loglike, rtol=1e-12)
    np.testing.assert_allclose(ens.ess, want.sum() ** 2 / (want**2).sum(), rtol=1e-12)
    assert np.isnan(ens.ess_fair)
    d = ens.drawn
    assert d.size == 500 and np.all(np.diff(d) >= 0) and np.all(ens.weights[d] > 0)
    assert np.unique(d).size < 500, "with replacement and a peaked likelihood, some members repeat"
    # The model's derived quantities are stored for every member: ECS = F2x / λ.
    assert ens.derived_names[:2] == ["ECS", "TCR"] and ens.derived.shape == (1500, len(ens.derived_names))
    f2x = ens.column("ECS") * ens.column("lambda")
    np.testing.assert_allclose(f2x, f2x[0], rtol=1e-12)
    assert np.all(ens.column("TCR") < ens.column("ECS"))
    # The constrained ensemble reads as a one-step chain with one walker per member.
    chain = climcal.load(str(out))
    assert chain.get_chain().shape == (1, 500, len(ens.names))
    np.testing.assert_array_equal(chain.get_chain()[0], ens.parameters[d])


def test_weighted_quantile():
    x = np.random.default_rng(1).normal(size=101)
    q = [0.0, 0.05, 0.5, 0.95, 1.0]
    np.testing.assert_allclose(climcal.weighted_quantile(x, q), np.quantile(x, q), rtol=0, atol=1e-15)
    np.testing.assert_allclose(climcal.weighted_quantile(x, q, np.full(101, 3.0)), np.quantile(x, q), atol=1e-15)
    # Zero weights drop members.
    w = np.r_[np.zeros(50), np.ones(51)]
    np.testing.assert_allclose(climcal.weighted_quantile(x, q, w), np.quantile(x[50:], q), atol=1e-15)
    with pytest.raises(ValueError):
        climcal.weighted_quantile(x, 0.5, -np.ones(101))


def test_plots_and_frames(hist_ens):
    _, _, ens = hist_ens
    fig = ens.plot.constraints()
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    assert ens.plot.corner(["lambda", "gsat"]) is not None
    df = ens.to_dataframe()
    assert len(df) == 3000 and df["weight"].sum() == pytest.approx(ens.weights.sum())
    c = ens.constrained()
    assert list(c.index) == list(ens.drawn)
    np.testing.assert_allclose(ens.quantiles("lambda", weighted=False), np.quantile(ens.column("lambda"), [0.05, 0.5, 0.95]))
    assert "3000/3000 members" in repr(ens)
    # Run records are in the sidecar log (FILE.log), not in the file.
    assert [r["event"] for r in ens.runs] == ["members", "constraints"] and ens.wall_seconds > 0
    assert ens.runs[0]["from"] == 0 and ens.runs[0]["to"] == 3000
    with pytest.raises(KeyError, match="not a stored quantity"):
        ens.column("nope")
