"""emcee reads climcal's chain files, and climcal reads emcee's.

Run by launch/test.d/20-storage-python.sh, which builds the binary and sets
CLIMCAL_BIN. Reference: emcee 3.1.6 `emcee.backends.HDFBackend`.
"""
import json
import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

emcee = pytest.importorskip("emcee")

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))

LINEAR = (ROOT / "tests" / "data" / "toy_linear.toml").read_text()


def climcal(*args, cwd=None):
    return subprocess.run([BIN, *map(str, args)], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("linear")
    (d / "toy_linear.csv").write_text((ROOT / "tests" / "data" / "toy_linear.csv").read_text())
    (d / "run.toml").write_text(LINEAR.replace("n_steps = 300", "n_steps = 1500"))
    r = climcal("run", "run.toml", "-q", "-o", "run.h5", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "run.h5"


def test_emcee_backend_reads_our_chain(linear_run):
    b = emcee.backends.HDFBackend(str(linear_run), read_only=True)
    assert b.iteration == 1500
    assert tuple(int(x) for x in b.shape) == (16, 2)
    with h5py.File(linear_run, "r") as f:
        chain = f["mcmc/chain"][()]
        lp = f["mcmc/log_prob"][()]
        blobs = f["mcmc/blobs"][()]
        acc = f["climcal/state0/accepted"][()] if f["climcal/state0"].attrs["serial"] > f["climcal/state1"].attrs["serial"] else f["climcal/state1/accepted"][()]
        names = [n.decode() if isinstance(n, bytes) else n for n in f["climcal/param_names"][()]]
    assert names == ["intercept", "slope"]
    np.testing.assert_array_equal(b.get_chain(), chain)
    np.testing.assert_array_equal(b.get_log_prob(), lp)
    np.testing.assert_array_equal(b.get_chain(flat=True, discard=100, thin=5), chain[104::5].reshape(-1, 2))
    np.testing.assert_array_equal(b.get_blobs(), blobs)
    assert blobs.shape == (1500, 16, 21)
    np.testing.assert_array_equal(b.accepted, acc.astype(float))
    # The blobs are the model at the observation times: y = intercept + slope * t.
    t = np.arange(21.0)
    np.testing.assert_allclose(blobs[-1], chain[-1, :, :1] + chain[-1, :, 1:] * t, rtol=1e-12, atol=1e-12)
    # emcee's acceptance fraction equals ours.
    info = json.loads(climcal("info", linear_run, "--json").stdout)
    np.testing.assert_allclose(b.accepted / b.iteration, info["acceptance_per_walker"], rtol=1e-12)


def test_autocorr_time_matches_climcal_info(linear_run):
    b = emcee.backends.HDFBackend(str(linear_run), read_only=True)
    tau_emcee = b.get_autocorr_time(discard=200, quiet=True)
    info = json.loads(climcal("info", linear_run, "--json", "--discard", "200").stdout)
    tau_ours = [p["tau"] for p in info["parameters"]]
    # Same definition (integrated_time, c = 5) on the same numbers: only FFT rounding differs.
    np.testing.assert_allclose(tau_ours, tau_emcee, rtol=1e-8)
    flat = b.get_chain(discard=200, flat=True)
    for i, p in enumerate(info["parameters"]):
        assert p["mean"] == pytest.approx(flat[:, i].mean(), rel=1e-10, abs=1e-12)
        assert p["sd"] == pytest.approx(flat[:, i].std(ddof=1), rel=1e-10)
        assert p["q05"] == pytest.approx(np.quantile(flat[:, i], 0.05), rel=1e-10, abs=1e-12)
        assert p["q95"] == pytest.approx(np.quantile(flat[:, i], 0.95), rel=1e-10, abs=1e-12)


def test_climcal_info_reads_emcee_files(tmp_path):
    np.random.seed(5)
    ndim, nwalkers = 3, 12

    def log_prob(x):
        return -0.5 * np.sum((x - np.array([1.0, 2.0, 3.0])) ** 2)

    path = tmp_path / "emcee.h5"
    backend = emcee.backends.HDFBackend(str(path))
    backend.reset(nwalkers, ndim)
    s = emcee.EnsembleSampler(nwalkers, ndim, log_prob, backend=backend)
    s.run_mcmc(np.random.randn(nwalkers, ndim), 800, progress=False)
    r = climcal("info", path, "--json", "--discard", "100")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert not info["climcal_file"]
    assert [p["name"] for p in info["parameters"]] == ["p0", "p1", "p2"]
    assert info["n_rows"] == 800 and info["n_walkers"] == nwalkers
    np.testing.assert_allclose(info["acceptance_per_walker"], s.acceptance_fraction, rtol=1e-12)
    flat = s.get_chain(discard=100, flat=True)
    np.testing.assert_allclose([p["mean"] for p in info["parameters"]], flat.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(
        [p["tau"] for p in info["parameters"]], s.get_autocorr_time(discard=100, quiet=True), rtol=1e-8
    )
    # The table form works too, and resume refuses: emcee files hold no sampler state.
    assert "p0" in climcal("info", path).stdout
    r = climcal("resume", path, "--steps", "10", "-q")
    assert r.returncode == 2 and "climcal" in r.stderr
