"""Runs driven from Python write the engine's HDF5 chain file: readable by
climcal.load (h5py only) and emcee, resumable to the same chain as a straight run,
and written when Ctrl-C stops a run."""

import numpy as np
import pytest

import climcal
from conftest import TIMES, one_box_python

pytestmark = pytest.mark.skipif(not climcal._lib.HAS_HDF5, reason="extension built without HDF5")


def make(params, target, seed=11, **kw):
    return climcal.EnsembleSampler(parameters=params, target=target, runner=climcal.ModelRunner("one_box"),
                                   n_walkers=16, seed=seed, **kw)


def test_checkpoint_file_reads_back_with_h5py_and_emcee(params, target, tmp_path):
    path = tmp_path / "run.h5"
    s = make(params, target, store_blobs=True)
    chain = s.run(s.initialize("prior"), n_steps=60, thin=2, checkpoint_every=10, checkpoint_path=path, progress=False)
    back = climcal.load(path)
    np.testing.assert_array_equal(back.samples, chain.samples)
    np.testing.assert_array_equal(back.log_prob, chain.log_prob)
    np.testing.assert_array_equal(back.blobs, chain.blobs)
    np.testing.assert_array_equal(back.accepted, chain.accepted)
    assert back.names == ["lambda", "heat_capacity"] and back.thin == 2 and back.n_steps == 60
    assert [n for n, _ in back.blob_layout] == ["tas"]
    np.testing.assert_array_equal(back.blob_layout[0][1], chain.blob_layout[0][1])
    assert back.metadata["seed"] == 11 and back.metadata["transforms"] == ["identity", "log"]
    assert back.metadata["priors"][1] == '{"dist":"log_normal","mu":2.0,"sigma":0.5}'
    np.testing.assert_allclose(back.acceptance_fraction, chain.acceptance_fraction)
    emcee = pytest.importorskip("emcee")
    b = emcee.backends.HDFBackend(str(path), read_only=True)
    np.testing.assert_array_equal(b.get_chain(), chain.samples)


def test_resume_continues_the_same_chain(params, target, tmp_path):
    path = tmp_path / "run.h5"
    s = make(params, target)
    s.run(s.initialize("prior"), n_steps=30, checkpoint_every=7, checkpoint_path=path, progress=False)
    s2 = make(params, target, seed=999)  # the seed does not matter: the streams come from the file
    full = s2.resume(path, n_steps=20, progress=False)
    ref = make(params, target)
    straight = ref.run(ref.initialize("prior"), n_steps=50, progress=False)
    np.testing.assert_array_equal(full.samples, straight.samples)
    np.testing.assert_array_equal(full.log_prob, straight.log_prob)
    np.testing.assert_array_equal(full.accepted, straight.accepted)
    assert full.n_steps == 50


def test_existing_file_is_not_overwritten_and_mismatched_resume_is_refused(params, target, tmp_path):
    path = tmp_path / "run.h5"
    s = make(params, target)
    s.run(s.initialize("prior"), n_steps=5, checkpoint_path=path, progress=False)
    other = make(params, target)
    with pytest.raises(ValueError, match="exists and holds another run"):
        other.run(other.initialize("prior"), n_steps=5, checkpoint_path=path, progress=False)
    assert climcal.load(path).n_rows == 5
    wide = climcal.EnsembleSampler(parameters=params, target=target, runner="one_box", n_walkers=32)
    with pytest.raises(ValueError, match="16 walkers.*n_walkers=16"):
        wide.resume(path, n_steps=5, progress=False)
    p2 = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0), "heat_capacity": climcal.Uniform(1.0, 30.0)})
    with pytest.raises(ValueError, match="priors"):
        make(p2, target).resume(path, n_steps=5, progress=False)
    with pytest.raises(ValueError, match="not.*chain file|no 'mcmc'|cannot"):
        (tmp_path / "junk.h5").write_bytes(b"not hdf5")
        make(params, target).resume(tmp_path / "junk.h5", n_steps=5, progress=False)


def test_interrupted_run_has_its_checkpoint_and_resumes_exactly(params, target, tmp_path):
    path = tmp_path / "run.h5"
    calls = {"n": 0}

    def model(p):
        calls["n"] += 1
        if calls["n"] == 16 + 8 * 9:  # some steps in
            raise KeyboardInterrupt
        return one_box_python(p)

    runner = climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES)
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=16, seed=11)
    state = s.initialize("prior")
    with pytest.raises(KeyboardInterrupt, match="chain saved to"):
        s.run(state, n_steps=40, checkpoint_every=1000, checkpoint_path=path, progress=False)
    saved = climcal.load(path)
    assert saved.n_rows == state.iteration > 0
    # Resumed with the same (Python) model: a built-in model would be another posterior.
    again = climcal.ModelRunner(model_factory=one_box_python, output_variables=["tas"], times=TIMES)
    s2 = climcal.EnsembleSampler(parameters=params, target=target, runner=again, n_walkers=16, seed=11)
    full = s2.resume(path, n_steps=40 - state.iteration, progress=False)
    ref = make(params, target)
    straight = ref.run(ref.initialize("prior"), n_steps=40, progress=False)
    np.testing.assert_array_equal(full.samples, straight.samples)
