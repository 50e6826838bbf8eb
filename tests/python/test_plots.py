"""Every chain plot renders to PNG with the Agg backend and has the expected axes."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import climcal

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(request):
    from conftest import TIMES, one_box_python

    rng = np.random.default_rng(1)
    idx = np.arange(0, len(TIMES), 5)
    obs = one_box_python({"lambda": 1.2, "heat_capacity": 8.0})["tas"][idx] + rng.normal(0, 0.05, idx.size)
    target = climcal.Target().add_variable("tas", TIMES[idx], obs, np.full(idx.size, 0.05)).with_reference_period(1850, 1900)
    params = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0), "heat_capacity": climcal.Uniform(1.0, 30.0)})
    runner = climcal.ModelRunner("one_box")
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=16, seed=2, store_blobs=True)
    chain = s.run(s.initialize("prior"), n_steps=300, progress=False)
    return chain, runner, target


def save(fig, tmp_path, name):
    p = tmp_path / f"{name}.png"
    fig.savefig(p)
    assert p.read_bytes()[:8] == PNG
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_trace(run, tmp_path):
    chain, _, _ = run
    fig = chain.plot.trace(discard=100)
    axes = fig.get_axes()
    assert [a.get_ylabel() for a in axes] == ["lambda", "heat_capacity", "log prob"]
    assert len(axes[0].get_lines()) == 16 and axes[-1].get_xlabel() == "step"
    save(fig, tmp_path, "trace")
    fig = chain.plot.trace(params=["lambda"], log_prob=False)
    assert [a.get_ylabel() for a in fig.get_axes()] == ["lambda"]
    with pytest.raises(ValueError, match="no parameter 'x'"):
        chain.plot.trace(params=["x"])


def test_corner(run, tmp_path):
    pytest.importorskip("corner")
    chain, _, _ = run
    fig = chain.plot.corner(discard=100)
    assert len(fig.get_axes()) == 4  # 2 x 2 grid
    labels = {a.get_xlabel() for a in fig.get_axes()}
    assert {"lambda", "heat_capacity"} <= labels
    save(fig, tmp_path, "corner")


def test_autocorr(run, tmp_path):
    chain, _, _ = run
    fig = chain.plot.autocorr()
    (ax,) = fig.get_axes()
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 3  # two parameters and N/50
    save(fig, tmp_path, "autocorr")


def test_acceptance(run, tmp_path):
    chain, _, _ = run
    fig = chain.plot.acceptance()
    (ax,) = fig.get_axes()
    assert len(ax.patches) >= 16 and ax.get_ylabel() == "acceptance fraction"
    save(fig, tmp_path, "acceptance")


def test_posterior_predictive_from_blobs_and_from_runs(run, tmp_path):
    chain, runner, target = run
    fig = chain.plot.posterior_predictive(target=target, n_samples=50, discard=100)
    (ax,) = fig.get_axes()
    assert ax.get_ylabel() == "tas" and "stored blobs" in ax.get_title()
    save(fig, tmp_path, "ppc_blobs")
    no_blobs = climcal.Chain(chain.samples, chain.log_prob, names=chain.names, accepted=chain.accepted)
    fig = no_blobs.plot.posterior_predictive(runner, target, n_samples=20, discard=100)
    (ax,) = fig.get_axes()
    assert "20 model runs" in ax.get_title()
    save(fig, tmp_path, "ppc_runs")
    with pytest.raises(ValueError, match="pass runner="):
        no_blobs.plot.posterior_predictive(target=target)
