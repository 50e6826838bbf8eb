"""climcal.load reads chain files with h5py alone: emcee's HDFBackend files, files
still being written (only committed rows), and it rejects what is not a chain file."""

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import climcal

emcee = pytest.importorskip("emcee")


def emcee_file(path, n_steps=50, nwalkers=10, ndim=3):
    backend = emcee.backends.HDFBackend(str(path))
    backend.reset(nwalkers, ndim)
    s = emcee.EnsembleSampler(nwalkers, ndim, lambda x: -0.5 * np.sum(x**2), backend=backend)
    s.run_mcmc(np.random.default_rng(0).normal(size=(nwalkers, ndim)), n_steps)
    return s


def test_load_an_emcee_file(tmp_path):
    p = tmp_path / "emcee.h5"
    s = emcee_file(p)
    chain = climcal.load(p)
    np.testing.assert_array_equal(chain.samples, s.get_chain())
    np.testing.assert_array_equal(chain.log_prob, s.get_log_prob())
    np.testing.assert_allclose(chain.acceptance_fraction, s.acceptance_fraction)
    assert chain.names == ["p0", "p1", "p2"] and chain.path == str(p)


def test_load_reads_only_committed_rows(tmp_path):
    p = tmp_path / "partial.h5"
    s = emcee_file(p, n_steps=40)
    with h5py.File(p, "a") as f:
        f["mcmc"].attrs["iteration"] = 25  # as if rows 25.. were written but not committed
    chain = climcal.load(p)
    assert chain.n_rows == 25
    np.testing.assert_array_equal(chain.samples, s.get_chain()[:25])


def test_load_works_without_the_extension(tmp_path):
    p = tmp_path / "emcee.h5"
    emcee_file(p, n_steps=5)
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["climcal._lib"] = None  # make the extension unimportable
        import climcal
        c = climcal.load({str(p)!r})
        assert c.samples.shape == (5, 10, 3), c.samples.shape
        try:
            climcal.EnsembleSampler
        except ImportError as e:
            assert "pip install ." in str(e)
        else:
            raise SystemExit("expected ImportError")
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chain file"):
        climcal.load(tmp_path / "missing.h5")
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_group("data")
    with pytest.raises(ValueError, match="not a chain file.*'mcmc'"):
        climcal.load(p)
