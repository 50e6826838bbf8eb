"""The example scripts of examples/emcee run unchanged with emcee and with
climcal.emcee and agree in distribution; files either writes are read by both.

Each script runs twice (``--climcal`` selects ``import climcal.emcee as
emcee``), with its own fixed seeds. The two runs use different random streams,
so their posterior means differ by Monte Carlo error: the test allows 5
standard errors of the difference, ``5 · sqrt(2) · sd · sqrt(tau / N)`` (``N``
flat samples, ``tau`` the larger of the two autocorrelation times, floored at
1), and the same for the standard deviations (standard error of a standard
deviation ``sd · sqrt(tau / (2 N))``). For a Gaussian error that bound is
exceeded with probability 6e-7 per quantity; runs that sample the wrong
distribution (a wrong Metropolis–Hastings factor, a lost blob) miss it by far.
Where the truth is known (the Gaussian targets) both runs are also compared
with it, with the same 5σ bound.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("emcee")
pytest.importorskip("climcal._lib")
h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "emcee"


def run(script, out, impl):
    args = [sys.executable, str(EXAMPLES / script), str(out)] + (["--climcal"] if impl == "climcal" else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    p = subprocess.run(args, cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{script} ({impl}) failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def agree(a, b, tau_a, tau_b, what):
    n = min(len(a), len(b))
    tau = np.maximum(np.maximum(np.atleast_1d(tau_a), np.atleast_1d(tau_b)), 1.0)
    sd = np.maximum(a.std(axis=0), b.std(axis=0))
    se_mean = np.sqrt(2.0) * sd * np.sqrt(tau / n)
    se_sd = np.sqrt(2.0) * sd * np.sqrt(tau / (2 * n))
    dm = np.abs(a.mean(axis=0) - b.mean(axis=0))
    ds = np.abs(a.std(axis=0) - b.std(axis=0))
    assert np.all(dm < 5 * se_mean), f"{what}: means differ by {dm / se_mean} standard errors"
    assert np.all(ds < 5 * se_sd), f"{what}: standard deviations differ by {ds / se_sd} standard errors"


def matches_gaussian(x, tau, mean, cov, what):
    n = len(x)
    tau = np.maximum(np.atleast_1d(tau), 1.0)
    sd = np.sqrt(np.diag(cov))
    dm = np.abs(x.mean(axis=0) - mean)
    ds = np.abs(x.std(axis=0) - sd)
    assert np.all(dm < 5 * sd * np.sqrt(tau / n)), f"{what}: mean off by {dm / (sd * np.sqrt(tau / n))} se"
    assert np.all(ds < 5 * sd * np.sqrt(tau / (2 * n))), f"{what}: sd off"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("emcee-examples")
    res = {}
    for script, ext in [("line_fit_blobs.py", "npz"), ("vectorized.py", "npz"), ("named_parameters.py", "npz"),
                        ("pool.py", "npz"), ("resume_backend.py", "h5")]:
        for impl in ("emcee", "climcal"):
            out = d / f"{script[:-3]}-{impl}.{ext}"
            run(script, out, impl)
            res[script, impl] = out
    return res


def load(outputs, script, impl):
    p = outputs[script, impl]
    return np.load(str(p) + ".npz" if p.suffix == ".h5" else p)


@pytest.mark.parametrize("script", ["line_fit_blobs.py", "vectorized.py", "named_parameters.py", "pool.py",
                                    "resume_backend.py"])
def test_same_distribution(outputs, script):
    a, b = load(outputs, script, "emcee"), load(outputs, script, "climcal")
    agree(a["samples"], b["samples"], a["tau"], b["tau"], script)
    if "truth" in a:
        for r, impl in ((a, "emcee"), (b, "climcal")):
            matches_gaussian(r["samples"], r["tau"], r["truth"], r["cov"], f"{script} ({impl})")


def test_blobs_agree(outputs):
    a, b = load(outputs, "line_fit_blobs.py", "emcee"), load(outputs, "line_fit_blobs.py", "climcal")
    agree(a["log_like"][:, None], b["log_like"][:, None], a["tau"].max(), b["tau"].max(), "log-likelihood blob")


@pytest.mark.parametrize("writer", ["emcee", "climcal"])
def test_backend_files_read_by_both(outputs, writer):
    import emcee

    import climcal.emcee as cemcee

    fn = outputs["resume_backend.py", writer]
    ref = cemcee.backends.HDFBackend(fn, read_only=True) if writer == "climcal" else emcee.backends.HDFBackend(
        fn, read_only=True)
    for mod in (emcee, cemcee):
        be = mod.backends.HDFBackend(fn, read_only=True)
        assert be.iteration == ref.iteration >= 750  # 500 + at least one chunk of 250
        assert be.shape == (24, 4)
        np.testing.assert_array_equal(be.get_chain(), ref.get_chain())
        np.testing.assert_array_equal(be.get_log_prob(thin=3, discard=10, flat=True),
                                      ref.get_log_prob(thin=3, discard=10, flat=True))
        np.testing.assert_array_equal(be.accepted, ref.accepted)
        last = be.get_last_sample()
        np.testing.assert_array_equal(last.coords, ref.get_chain()[-1])
        rs = np.random.RandomState()
        rs.set_state(tuple(last.random_state))  # a valid numpy RandomState state
    with h5py.File(fn, "r") as f:
        g = f["mcmc"]
        assert set(g) >= {"chain", "log_prob", "accepted"}
        assert int(g.attrs["iteration"]) == g["chain"].shape[0] or g["chain"].shape[0] >= int(g.attrs["iteration"])
