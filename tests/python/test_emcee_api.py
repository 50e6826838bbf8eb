"""climcal.emcee beyond emcee's own suite (tests/emcee_suite runs that): how
often Python is called, the pool, determinism from numpy's seed, moves written
in Python, DIME, pickling of move state, and HDF5 files shared with emcee."""

import pickle

import numpy as np
import pytest

pytest.importorskip("climcal._lib")
import climcal.emcee as cemcee  # noqa: E402


def lp(x):
    return -0.5 * float(x @ x)


def lpv(x):
    return -0.5 * np.einsum("ij,ij->i", x, x)


def test_vectorised_calls_once_per_half_ensemble():
    calls = []

    def f(x):
        calls.append(len(x))
        return lpv(x)

    np.random.seed(0)
    s = cemcee.EnsembleSampler(32, 3, f, vectorize=True)
    s.run_mcmc(np.random.randn(32, 3), 10)
    assert calls == [32] + [16] * 20  # the initial ensemble, then two halves per step


def test_plain_calls_once_per_walker_through_pool_map():
    class CountingPool:
        def __init__(self):
            self.maps, self.items = 0, 0

        def map(self, fn, xs):
            self.maps += 1
            out = [fn(x) for x in xs]
            self.items += len(out)
            return out

    pool = CountingPool()
    np.random.seed(0)
    s = cemcee.EnsembleSampler(20, 3, lp, pool=pool)
    s.run_mcmc(np.random.randn(20, 3), 7)
    assert pool.maps == 1 + 2 * 7 and pool.items == 20 + 20 * 7
    assert pickle.loads(pickle.dumps(s)).pool is None


@pytest.mark.parametrize("moves", [None, cemcee.moves.DEMove(), cemcee.moves.GaussianMove(0.3, mode="sequential"),
                                   [(cemcee.moves.DEMove(), 0.8), (cemcee.moves.DESnookerMove(), 0.2)],
                                   cemcee.moves.DIMEMove(), cemcee.moves.WalkMove(s=4), cemcee.moves.KDEMove()])
def test_same_numpy_seed_same_chain(moves):
    def go():
        np.random.seed(42)
        s = cemcee.EnsembleSampler(24, 3, lp, moves=pickle.loads(pickle.dumps(moves)))
        s.run_mcmc(np.random.randn(24, 3), 30)
        return s.get_chain(), s.random_state

    (a, ra), (b, rb) = go(), go()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra[1], rb[1])
    np.random.seed(43)
    s = cemcee.EnsembleSampler(24, 3, lp, moves=pickle.loads(pickle.dumps(moves)))
    s.run_mcmc(np.random.randn(24, 3), 30)
    assert not np.array_equal(s.get_chain(), a)


def test_random_state_fixes_the_continuation():
    np.random.seed(1)
    s = cemcee.EnsembleSampler(16, 2, lp)
    s.run_mcmc(np.random.randn(16, 2), 20)
    last = s.get_last_sample()
    s.run_mcmc(None, 15)
    want = s.get_chain()[20:]
    t = cemcee.EnsembleSampler(16, 2, lp)
    t.run_mcmc(last, 15)  # last.random_state is restored
    np.testing.assert_array_equal(t.get_chain(), want)


class PyStretch(cemcee.moves.RedBlueMove):
    """The stretch move written in Python, as a user would subclass."""

    def __init__(self, a=2.0, **kw):
        self.a = a
        super().__init__(**kw)

    def get_proposal(self, s, c, random):
        c = np.concatenate(c, axis=0)
        ns, nc, ndim = len(s), len(c), s.shape[1]
        zz = ((self.a - 1.0) * random.rand(ns) + 1) ** 2.0 / self.a
        rint = random.randint(nc, size=(ns,))
        return c[rint] - (c[rint] - s) * zz[:, None], (ndim - 1.0) * np.log(zz)


def gaussian_mh(x, random):
    return x + 0.7 * random.randn(*x.shape), np.zeros(len(x))


@pytest.mark.parametrize("move", [PyStretch(), cemcee.moves.MHMove(gaussian_mh)])
def test_python_moves_sample_a_normal(move):
    np.random.seed(3)
    s = cemcee.EnsembleSampler(32, 2, lp, moves=move)
    s.run_mcmc(np.random.randn(32, 2), 3000)
    x = s.get_chain(discard=200, flat=True)
    tau = np.max(s.get_autocorr_time(discard=200, quiet=True))
    se = np.sqrt(tau / len(x))
    assert np.all(np.abs(x.mean(axis=0)) < 5 * se)
    assert np.all(np.abs(x.std(axis=0) - 1) < 5 * se)


def test_subclass_of_builtin_with_own_proposal_runs_in_python():
    calls = []

    class MyStretch(cemcee.moves.StretchMove):
        def get_proposal(self, s, c, random):
            calls.append(1)
            return PyStretch.get_proposal(self, s, c, random)

    np.random.seed(0)
    s = cemcee.EnsembleSampler(16, 2, lp, moves=MyStretch())
    s.run_mcmc(np.random.randn(16, 2), 5)
    assert len(calls) == 10


def test_dime_samples_and_pickles_its_tuning():
    np.random.seed(5)
    move = cemcee.moves.DIMEMove()
    s = cemcee.EnsembleSampler(32, 3, lpv, moves=move, vectorize=True)
    s.run_mcmc(np.random.randn(32, 3), 3000)
    x = s.get_chain(discard=500, flat=True)
    tau = np.max(s.get_autocorr_time(discard=500, quiet=True))
    se = np.sqrt(tau / len(x))
    assert np.all(np.abs(x.mean(axis=0)) < 5 * se) and np.all(np.abs(x.std(axis=0) - 1) < 5 * se)
    # the pickled sampler continues exactly as the original
    t = pickle.loads(pickle.dumps(s))
    assert '"kind":"dime"' in t._get_engine().state_json()  # the engine's tuning travels with the pickle
    s.run_mcmc(None, 20)
    t.run_mcmc(None, 20)
    np.testing.assert_array_equal(s.get_chain(), t.get_chain())


def test_too_few_walkers_is_emcees_runtime_error():
    np.random.seed(0)
    s = cemcee.EnsembleSampler(6, 4, lp)
    with pytest.raises(RuntimeError, match="twice the number of dimensions"):
        s.run_mcmc(np.random.randn(6, 4), 2)


def test_bad_move_arguments_are_value_errors():
    np.random.seed(0)
    s = cemcee.EnsembleSampler(8, 3, lp, moves=cemcee.moves.GaussianMove(np.ones(2)))
    with pytest.raises(ValueError):
        s.run_mcmc(np.random.randn(8, 3), 2)
    with pytest.raises(ValueError, match="mode"):
        cemcee.moves.GaussianMove(1.0, mode="sideways")


@pytest.mark.parametrize("writer,reader", [("climcal", "emcee"), ("emcee", "climcal")])
def test_hdf_resume_across_implementations(tmp_path, writer, reader):
    emcee = pytest.importorskip("emcee")
    mods = {"emcee": emcee, "climcal": cemcee}
    fn = tmp_path / "chain.h5"
    np.random.seed(9)
    p0 = np.random.randn(16, 3)

    def blob_lp(x):
        return lp(x), float(x[0]), float(x[1])

    w = mods[writer]
    be = w.backends.HDFBackend(str(fn))
    be.reset(16, 3)
    s = w.EnsembleSampler(16, 3, blob_lp, backend=be)
    s.run_mcmc(p0, 40)
    chain, blobs = s.get_chain(), s.get_blobs()

    r = mods[reader]
    be2 = r.backends.HDFBackend(str(fn))
    assert be2.iteration == 40
    np.testing.assert_array_equal(be2.get_chain(), chain)
    assert be2.get_blobs().dtype == blobs.dtype
    t = r.EnsembleSampler(16, 3, blob_lp, backend=be2)  # picks up random state and last sample
    t.run_mcmc(None, 10)
    assert be2.iteration == 50
    np.testing.assert_array_equal(be2.get_chain()[:40], chain)
    back = w.backends.HDFBackend(str(fn), read_only=True)
    assert back.iteration == 50
    np.testing.assert_array_equal(back.get_chain(), be2.get_chain())
    np.testing.assert_array_equal(back.get_blobs(), be2.get_blobs())
    np.testing.assert_array_equal(back.accepted, be2.accepted)


def test_hdf_backend_batches_writes_but_reads_see_everything(tmp_path):
    fn = tmp_path / "c.h5"
    be = cemcee.backends.HDFBackend(str(fn), flush_interval=3600)
    be.reset(8, 2)
    np.random.seed(0)
    s = cemcee.EnsembleSampler(8, 2, lp, backend=be)
    gen = s.sample(np.random.randn(8, 2), iterations=30)
    for _ in range(10):
        next(gen)
    import h5py

    with h5py.File(fn, "r") as f:  # another reader: nothing committed yet (flush_interval is an hour)
        assert int(f["mcmc"].attrs["iteration"]) == 0
    assert s.get_chain().shape == (10, 8, 2)  # reads through the backend flush first
    with h5py.File(fn, "r") as f:
        assert int(f["mcmc"].attrs["iteration"]) == 10
    for _ in gen:
        pass
    with h5py.File(fn, "r") as f:  # the end of the run writes the rest
        assert int(f["mcmc"].attrs["iteration"]) == 30


def test_pool_does_not_change_the_chain():
    class Pool:
        def map(self, fn, xs):
            return list(map(fn, xs))

    def go(pool):
        np.random.seed(21)
        s = cemcee.EnsembleSampler(16, 3, lp, pool=pool, moves=cemcee.moves.DEMove())
        s.run_mcmc(np.random.randn(16, 3), 25)
        return s.get_chain()

    np.testing.assert_array_equal(go(None), go(Pool()))


@pytest.mark.parametrize("moves", [None, [(cemcee.moves.DEMove(), 0.8), (cemcee.moves.DESnookerMove(), 0.2)]])
def test_resume_from_hdf_file_continues_exactly(tmp_path, moves):
    """A run stopped after 30 steps and resumed from its file by a new sampler
    gives the chain of the run that went straight through 50 steps."""
    np.random.seed(4)
    p0 = np.random.randn(16, 3)
    fn = tmp_path / "a.h5"
    be = cemcee.backends.HDFBackend(str(fn))
    np.random.seed(5)  # the sampler's RandomState starts from numpy's global one
    s = cemcee.EnsembleSampler(16, 3, lp, backend=be, moves=pickle.loads(pickle.dumps(moves)))
    s.run_mcmc(p0, 50)
    straight = s.get_chain()

    fn2 = tmp_path / "b.h5"
    np.random.seed(5)
    s = cemcee.EnsembleSampler(16, 3, lp, backend=cemcee.backends.HDFBackend(str(fn2)),
                               moves=pickle.loads(pickle.dumps(moves)))
    s.run_mcmc(p0, 30)
    np.random.seed(99)  # the resumed sampler takes its random state from the file, not from numpy
    del s
    t = cemcee.EnsembleSampler(16, 3, lp, backend=cemcee.backends.HDFBackend(str(fn2)),
                               moves=pickle.loads(pickle.dumps(moves)))
    t.run_mcmc(None, 20)
    np.testing.assert_array_equal(t.get_chain(), straight)


@pytest.mark.parametrize("moves", [None, cemcee.moves.DIMEMove(), cemcee.moves.GaussianMove(0.4, mode="sequential")])
@pytest.mark.parametrize("hdf", [False, True])
def test_rust_loop_of_run_mcmc_is_the_step_by_step_chain(tmp_path, moves, hdf):
    """run_mcmc runs its loop in Rust in chunks of 256 kept steps, sample() one
    engine call per state: same chain, acceptance and random state."""
    out = []
    for k, how in enumerate(("run_mcmc", "sample")):
        np.random.seed(12)
        be = cemcee.backends.HDFBackend(str(tmp_path / f"{k}.h5")) if hdf else None
        s = cemcee.EnsembleSampler(24, 3, lp, moves=pickle.loads(pickle.dumps(moves)), backend=be)
        p0 = np.random.randn(24, 3)
        if how == "run_mcmc":
            s.run_mcmc(p0, 700, thin_by=3)  # 2100 steps: more than one chunk of 256 kept steps
        else:
            for _ in s.sample(p0, iterations=700, thin_by=3):
                pass
        out.append((s.get_chain(), s.get_log_prob(), s.acceptance_fraction, s.random_state[1], s.iteration))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
