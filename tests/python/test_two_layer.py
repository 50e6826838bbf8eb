"""The design's Python example on the real two-layer model: the README's HadCRUT5 +
ocean-heat-content calibration (cluster-examples/two-layer-hadcrut5.toml) built
from Python objects, a short run, the file, diagnostics and a plot."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import climcal

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "cluster-examples" / "data"

pytestmark = pytest.mark.skipif("two_layer" not in climcal.ModelRunner.builtin_names(), reason="no two_layer model")


def problem():
    params = (
        climcal.ParameterSet()
        .add("lambda", climcal.TruncatedNormal(1.16, 0.395, lower=0.2, upper=3.0), transform="logit", unit="W m-2 K-1")
        .add("C", climcal.LogNormal(math.log(8.0), 0.5), transform="log")
        .add("C_d", climcal.LogNormal(math.log(100.0), 0.5), transform="log")
        .add("gamma", climcal.LogNormal(math.log(0.6), 0.5), transform="log")
        .add("epsilon", climcal.LogNormal(math.log(1.2), 0.3), transform="log")
        .add("aerosol_scale", climcal.TruncatedNormal(1.0, 0.37, lower=0.0, upper=3.0), transform="logit")
    )
    gmst = pd.read_csv(DATA / "derived" / "hadcrut5_gmst_1850-2024.csv")
    ohc = pd.read_csv(DATA / "derived" / "ohc_full_depth_1971-2023_5yr.csv")
    target = climcal.Target.from_dataframe(gmst, time_col="year", variables={"Surface Temperature": "gmst"},
                                           uncertainty_col="sigma", reference_period=(1850, 1900))
    target.add_variable("Ocean Heat Content", ohc["year"], ohc["ohc"], ohc["sigma"])
    target.with_reference_period(1971, 1971, variable="Ocean Heat Content")
    runner = climcal.ModelRunner(
        "two_layer",
        feedback="lambda",
        ocean_heat_fraction=0.91,
        fixed={"nonaerosol_scale": 1.0},
        forcing={"file": str(DATA / "ERF_best_aggregates_1750-2024.csv")},
    )
    return params, target, runner


def test_two_layer_calibration_end_to_end(tmp_path):
    params, target, runner = problem()
    assert sorted(runner.parameters) == sorted(params.names)
    sampler = climcal.EnsembleSampler(parameters=params, target=target, runner=runner,
                                      likelihood=climcal.GaussianLikelihood(), n_walkers=24, seed=2024, store_blobs=True)
    state = sampler.initialize("prior")
    chain = sampler.run(state, n_steps=150, checkpoint_every=50, checkpoint_path=tmp_path / "two_layer.h5", progress=False)
    assert chain.samples.shape == (150, 24, 6)
    assert np.all(np.isfinite(chain.log_prob[-1]))
    assert 0.05 < chain.mean_acceptance_rate() < 0.9
    back = climcal.load(tmp_path / "two_layer.h5")
    np.testing.assert_array_equal(back.samples, chain.samples)
    assert [n for n, _ in back.blob_layout] == ["Surface Temperature", "Ocean Heat Content"]
    # A short run is not converged; the diagnostics still come out finite.
    assert all(np.isfinite(v) for v in chain.r_hat(discard=50).values())
    fig = back.plot.posterior_predictive(target=target, n_samples=50, discard=100)
    assert [a.get_ylabel() for a in fig.get_axes()] == ["Surface Temperature", "Ocean Heat Content"]
    # Best walker fits 20th-century warming: the model's GMST rise 1850-1900 -> 2015-2024
    # at the last row's best walker is between 0.7 and 1.8 K (observed ~1.2 K).
    k = int(np.argmax(chain.log_prob[-1]))
    t, out = runner.run(dict(zip(chain.names, chain.samples[-1, k])))
    tas = out["Surface Temperature"]
    rise = tas[(t >= 2015) & (t <= 2024)].mean() - tas[(t >= 1850) & (t <= 1900)].mean()
    assert 0.7 < rise < 1.8, rise


def test_two_layer_point_estimate():
    params, target, runner = problem()
    res = climcal.PointEstimator(params, target, runner).optimize(method="nelder-mead", n_restarts=2, seed=1)
    assert set(res.best_params) == set(params.names)
    assert 0.2 < res.best_params["lambda"] < 3.0 and np.isfinite(res.best_likelihood)
