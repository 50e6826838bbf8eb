"""``climcal.AR1Likelihood``: AR(1)-correlated residuals from Python, with the run
file's semantics (``[likelihood] kind = "ar1"``). A Python-built posterior equals a
dense multivariate-normal evaluation and gives the run file's chain bit for bit;
bad settings are errors that name them.

The chain comparison needs the climcal binary (CLIMCAL_BIN, default target/debug/climcal)."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import climcal

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "cluster-examples" / "data"
CSV = DATA / "derived" / "abrupt-4xCO2_MRI-ESM2-0.csv"
F4X = 8.295756724669461
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))

pytestmark = pytest.mark.skipif("two_layer" not in climcal.ModelRunner.builtin_names(), reason="no two_layer model")

PRIORS = {  # name: (lower, upper); uniform, logit transform, in this order
    "lambda": (0.1, 4.0),
    "C": (1.0, 40.0),
    "C_d": (10.0, 1000.0),
    "gamma": (0.05, 3.0),
    "epsilon": (0.2, 3.0),
    "rho_T": (0.0, 0.95),
    "sx_N": (0.0, 0.5),
}


def problem(transform="logit"):
    """The MRI-ESM2-0 abrupt-4xCO2 problem of two-layer-4xco2-ar1.toml, plus sigma_extra for N."""
    df = pd.read_csv(CSV)
    params = climcal.ParameterSet()
    for name, (lo, hi) in PRIORS.items():
        params.add(name, climcal.Uniform(lo, hi), **({} if transform is None else {"transform": transform}))
    target = (
        climcal.Target()
        .add_variable("Surface Temperature", df["year"], df["tas"], df["sigma_T"])
        .add_variable("Net Energy Imbalance", df["year"], df["N"], df["sigma_N"])
    )
    runner = climcal.ModelRunner("two_layer", feedback="lambda",
                                 forcing={"constant": F4X, "first_year": 0, "n_years": 150})
    lik = climcal.AR1Likelihood(rho="rho_T", variables={"Net Energy Imbalance": {"rho": 0.3, "sigma_extra": "sx_N"}})
    return params, target, runner, lik, df


def test_settings_read_back():
    _, _, _, lik, _ = problem()
    assert lik.rho == "rho_T" and lik.sigma_extra is None and lik.relative_error == 0.0
    assert lik.variables == {"Net Energy Imbalance": {"rho": 0.3, "sigma_extra": "sx_N"}}
    assert lik.parameters == ["rho_T", "sx_N"]
    assert "rho='rho_T'" in repr(lik) and "Net Energy Imbalance: rho=0.3 sigma_extra='sx_N'" in repr(lik)
    fixed = climcal.AR1Likelihood(rho=0.5, sigma_extra=0.02)
    assert fixed.rho == 0.5 and fixed.sigma_extra == 0.02 and fixed.parameters == []


def test_posterior_equals_the_dense_multivariate_normal():
    """ln p at a few points = uniform prior + Σ_var ln N(r; 0, Σ), Σ_ij = s_i s_j ρ^|t_i−t_j|,
    evaluated with scipy's dense multivariate normal (identity transforms, so no Jacobian)."""
    params, target, runner, lik, df = problem(transform=None)
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, likelihood=lik, n_walkers=16, seed=1)
    t = df["year"].to_numpy(float)
    lag = np.abs(t[:, None] - t[None, :])
    ln_prior = -sum(np.log(hi - lo) for lo, hi in PRIORS.values())
    rng = np.random.default_rng(3)
    points = np.array([[1.13, 7.3, 106.0, 0.83, 1.61, 0.6, 0.1], [0.9, 9.0, 80.0, 0.7, 1.2, 0.0, 0.0]])
    points = np.vstack([points, points[0] * rng.uniform(0.95, 1.05, 7)])
    got = s._native.log_prob(points)
    def dense(p, rho_n):
        _, out = runner.run(dict(zip(PRIORS, p[:5])))
        total = ln_prior
        for var, obs, sig, rho, extra in [
            ("Surface Temperature", df["tas"], df["sigma_T"], p[5], 0.0),
            ("Net Energy Imbalance", df["N"], df["sigma_N"], rho_n, p[6]),
        ]:
            sc = np.sqrt(sig.to_numpy() ** 2 + extra**2)
            cov = sc[:, None] * sc[None, :] * rho**lag
            total += scipy.stats.multivariate_normal(mean=np.zeros(t.size), cov=cov).logpdf(out[var] - obs.to_numpy())
        return total

    for p, g in zip(points, got):
        want = dense(p, 0.3)
        # |ln p| ~ 100-300; the dense Cholesky of a 150x150 matrix with condition
        # number <= (1+rho)/(1-rho) = 4 loses ~1e-13 relative: 1e-10 is ample.
        assert abs(g - want) < 1e-10 * abs(want), (p, g, want)
        # Negative control: another rho_N gives another value.
        assert abs(g - dense(p, 0.0)) > 1e-3


RUN_FILE = """
{params}
[model]
name = "two_layer"
options = {{ feedback = "lambda", forcing = {{ constant = {f4x!r}, first_year = 0, n_years = 150 }} }}

[target.variables."Surface Temperature"]
file = "{csv}"
time_column = "year"
column = "tas"
sigma = "sigma_T"

[target.variables."Net Energy Imbalance"]
file = "{csv}"
time_column = "year"
column = "N"
sigma = "sigma_N"

[likelihood]
kind = "ar1"
rho = "rho_T"

[likelihood.variables."Net Energy Imbalance"]
rho = 0.3
sigma_extra = "sx_N"

[sampler]
n_walkers = 16
n_steps = 60
seed = 11
init = "prior"
"""


@pytest.mark.skipif(not os.path.exists(BIN), reason=f"no climcal binary at {BIN} (cargo build --bin climcal, or set CLIMCAL_BIN)")
def test_python_chain_equals_the_run_file_chain(tmp_path):
    blocks = "\n".join(
        f'[parameters.{n}]\nprior = {{ dist = "uniform", lower = {lo!r}, upper = {hi!r} }}\ntransform = "logit"\n'
        for n, (lo, hi) in PRIORS.items()
    )
    cfg = tmp_path / "ar1.toml"
    cfg.write_text(RUN_FILE.format(params=blocks, f4x=F4X, csv=CSV.as_posix()))
    r = subprocess.run([BIN, "run", str(cfg), "-o", str(tmp_path / "cli.h5"), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli = climcal.load(tmp_path / "cli.h5")

    params, target, runner, lik, _ = problem()
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, likelihood=lik, n_walkers=16, seed=11)
    chain = s.run(s.initialize("prior"), n_steps=60, progress=False)
    assert cli.names == chain.names == list(PRIORS)
    np.testing.assert_array_equal(chain.samples, cli.samples)
    np.testing.assert_array_equal(chain.log_prob, cli.log_prob)
    assert 0.05 < chain.mean_acceptance_rate() < 0.95
    # Negative control: another fixed rho for N gives another chain.
    other = climcal.AR1Likelihood(rho="rho_T", variables={"Net Energy Imbalance": {"rho": 0.31, "sigma_extra": "sx_N"}})
    s2 = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, likelihood=other, n_walkers=16, seed=11)
    assert not np.array_equal(s2.run(s2.initialize("prior"), n_steps=60, progress=False).log_prob, cli.log_prob)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"rho": 1.0}, ValueError, "rho"),
        ({"rho": -0.1}, ValueError, "rho"),
        ({"rho": float("nan")}, ValueError, "rho"),
        ({"rho": True}, TypeError, "bool"),
        ({"rho": [0.5]}, TypeError, "number or the name"),
        ({"rho": ""}, ValueError, "empty parameter name"),
        ({"sigma_extra": -0.01}, ValueError, "sigma_extra"),
        ({"relative_error": -1.0}, ValueError, "relative_error"),
        ({"variables": {"T": {"rho": 1.5}}}, ValueError, "rho of 'T'"),
        ({"variables": {"T": {"phi": 0.5}}}, ValueError, "unknown key 'phi'"),
        ({"variables": {"T": 0.5}}, TypeError, "must be a dict"),
    ],
)
def test_bad_settings_name_the_problem(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        climcal.AR1Likelihood(**kwargs)


def test_bad_combinations_name_the_problem():
    params, target, runner, _, _ = problem()
    with pytest.raises(ValueError, match="not target variables"):
        climcal.EnsembleSampler(parameters=params, target=target, runner=runner,
                                likelihood=climcal.AR1Likelihood(variables={"tas": {"rho": 0.5}}))
    with pytest.raises(ValueError, match="no prior is given"):
        climcal.EnsembleSampler(parameters=params, target=target, runner=runner,
                                likelihood=climcal.AR1Likelihood(rho="rho_N"))
    with pytest.raises(TypeError, match="AR1Likelihood"):
        climcal.EnsembleSampler(parameters=params, target=target, runner=runner, likelihood="ar1")
    # A parameter that neither the model nor the likelihood uses is named too.
    with pytest.raises(ValueError, match="sx_N"):
        climcal.EnsembleSampler(parameters=params, target=target, runner=runner,
                                likelihood=climcal.AR1Likelihood(rho="rho_T"))


def test_point_estimate_with_sampled_rho():
    params, target, runner, lik, _ = problem()
    res = climcal.PointEstimator(params, target, runner, lik).optimize(method="nelder-mead", n_restarts=1, seed=2)
    assert set(res.best_params) == set(PRIORS)
    # The residuals of a two-layer fit to MRI-ESM2-0 are autocorrelated: rho_T > 0.2.
    assert 0.2 < res.best_params["rho_T"] < 0.95 and np.isfinite(res.best_likelihood)
