"""climcal.emcee's loop on the Rust engine (climcal._lib.EmceeEngine): the same
chain whatever drives it (sample(), run_mcmc and its chunks, the Python loop
that third-party backends get, a resume from a stored backend, an interrupted
run), blobs of any non-object dtype carried as bytes, the moves' tuning stored
in the backend, and climcal.moves objects as moves."""

import pickle

import numpy as np
import pytest

pytest.importorskip("climcal._lib")
import climcal.emcee as cemcee  # noqa: E402
import climcal.moves as cmoves  # noqa: E402
from climcal.emcee.backends import Backend  # noqa: E402
from test_emcee_api import PyStretch  # noqa: E402  (the stretch move written in Python)


def lp(x):
    return -0.5 * float(x @ x)


def lpv(x):
    return -0.5 * np.einsum("ij,ij->i", x, x)


def lp_blobs(x):
    # blobs that are exact functions of the position: a float and an int
    return lp(x), float(x[0]), int(np.floor(x[1] * 1e6))


class ThirdParty(Backend):
    """Not Backend itself: the sampler stores through save_step, step by step (the Python loop)."""


def mixture():
    return [(cemcee.moves.DEMove(), 0.6), (cemcee.moves.DESnookerMove(), 0.2), (cemcee.moves.StretchMove(), 0.2)]


def run(how, moves, fn=lp_blobs, nsteps=300, thin_by=3, seed=7, backend=None, nwalkers=16, ndim=3, **kw):
    np.random.seed(seed)
    p0 = np.random.randn(nwalkers, ndim)
    s = cemcee.EnsembleSampler(nwalkers, ndim, fn, moves=pickle.loads(pickle.dumps(moves)), backend=backend, **kw)
    if how == "run_mcmc":
        s.run_mcmc(p0, nsteps, thin_by=thin_by)
    else:
        for _ in s.sample(p0, iterations=nsteps, thin_by=thin_by):
            pass
    return s


def outputs(s):
    rs = s.random_state
    return (s.get_chain(), s.get_log_prob(), s.get_blobs(), s.acceptance_fraction, rs[1], rs[2], s.iteration)


def assert_same(a, b):
    for x, y in zip(outputs(a), outputs(b)):
        np.testing.assert_array_equal(x, y)


def test_seeds_drawn_at_once_are_single_draws():
    """run_mcmc draws a chunk's step seeds in one call, sample() and the Python
    loop one or thin_by at a time: the same numbers, and the same state after."""
    a, b = np.random.RandomState(3), np.random.RandomState(3)
    many = a.randint(np.iinfo(np.int64).max, size=1000, dtype=np.int64)
    one = [b.randint(np.iinfo(np.int64).max, dtype=np.int64) for _ in range(1000)]
    np.testing.assert_array_equal(many, one)
    np.testing.assert_array_equal(a.get_state()[1], b.get_state()[1])


def test_sample_run_mcmc_and_python_loop_give_the_same_chain_with_blobs():
    """A mixture with blobs and thin_by: run_mcmc (chunks of 256 kept steps:
    300 kept steps are two), the sample() generator (one engine call per
    state) and the step-by-step Python loop of a third-party backend give the
    same chain, log-probabilities, blobs, acceptance and random state."""
    a = run("run_mcmc", mixture())
    b = run("sample", mixture())
    c = run("run_mcmc", mixture(), backend=ThirdParty())
    assert a.get_chain().shape == (300, 16, 3) and a.get_blobs().shape == (300, 16, 2)
    assert_same(a, b)
    assert_same(a, c)
    chain, blobs = a.get_chain(), a.get_blobs()
    np.testing.assert_array_equal(blobs[..., 0], chain[..., 0])  # each stored blob is its row's
    np.testing.assert_array_equal(blobs[..., 1], np.floor(chain[..., 1] * 1e6))
    assert 0.1 < a.acceptance_fraction.mean() < 0.9


def test_sample_yields_states_with_the_random_state_of_each_step():
    np.random.seed(2)
    s = cemcee.EnsembleSampler(16, 3, lp_blobs, moves=mixture())
    states = [(st.coords.copy(), st.blobs.copy(), st.random_state) for st in s.sample(np.random.randn(16, 3),
                                                                                      iterations=5, thin_by=2)]
    assert len(states) == 5 and s.iteration == 5
    for i, (coords, blobs, rs) in enumerate(states):
        np.testing.assert_array_equal(coords, s.get_chain()[i])
        np.testing.assert_array_equal(blobs, s.get_blobs()[i])
    np.testing.assert_array_equal(states[-1][2][1], s.random_state[1])
    assert states[-1][2][2] == s.random_state[2]
    assert states[0][2][2] != states[1][2][2]  # each state has its own (4 words of the key used per state)


def test_vectorised_calls_once_per_set_through_sample_and_mixtures():
    calls = []

    def f(x):
        calls.append(len(x))
        return lpv(x)

    np.random.seed(0)
    s = cemcee.EnsembleSampler(32, 3, f, vectorize=True, moves=cemcee.moves.DESnookerMove())
    for _ in s.sample(np.random.randn(32, 3), iterations=4, thin_by=2):
        pass
    assert calls == [32] + [8] * 4 * 8  # the initial ensemble, then four sets per step


def dtype_cases():
    def f_float(x):
        return lp(x), float(x[0])

    def f_int(x):
        return lp(x), int(np.floor(x[0] * 1e6))

    def f_struct(x):
        return lp(x), float(x[2]), int(np.floor(x[1] * 1e3))

    def f_sub(x):
        return lp(x), 2.0 * x

    def f_f32(x):
        return lp(x), x[0], x[1]

    return [
        ("float", f_float, None, lambda c: c[..., 0]),
        ("int", f_int, None, lambda c: np.floor(c[..., 0] * 1e6).astype(np.int64)),
        ("struct", f_struct, np.dtype([("a", float), ("b", np.int32)]), None),
        ("subarray", f_sub, None, lambda c: 2.0 * c),
        ("float32", f_f32, np.float32, lambda c: c[..., :2].astype(np.float32)),
    ]


@pytest.mark.parametrize("case", dtype_cases(), ids=lambda c: c[0])
def test_blobs_of_each_dtype_are_the_rows_blobs(case):
    """Blobs of several dtypes travel as bytes through the engine: each stored
    blob is its function of the stored position (exact), with the dtype and
    shape of the step-by-step Python loop, whose values are the same."""
    name, f, dt, want = case
    a = run("run_mcmc", mixture(), fn=f, nsteps=120, thin_by=1, blobs_dtype=dt)
    b = run("run_mcmc", mixture(), fn=f, nsteps=120, thin_by=1, blobs_dtype=dt, backend=ThirdParty())
    assert_same(a, b)
    chain, blobs = a.get_chain(), a.get_blobs()
    assert blobs.dtype == b.get_blobs().dtype and blobs.shape == b.get_blobs().shape
    if name == "struct":
        np.testing.assert_array_equal(blobs["a"], chain[..., 2])
        np.testing.assert_array_equal(blobs["b"], np.floor(chain[..., 1] * 1e3).astype(np.int32))
    else:
        np.testing.assert_array_equal(blobs, want(chain))
    last = a.get_last_sample()
    np.testing.assert_array_equal(last.blobs, blobs[-1])


def test_object_blobs_stay_on_the_python_loop_with_the_same_chain():
    """Object blobs cannot be bytes: they run on the Python loop (engine steps
    one by one), with the chain the float-blob run gives for the same seed."""

    def f_obj(x):
        return lp(x), {"x0": float(x[0])}

    a = run("run_mcmc", mixture(), fn=f_obj, nsteps=60, thin_by=1)
    b = run("run_mcmc", mixture(), fn=lambda x: (lp(x), float(x[0])), nsteps=60, thin_by=1)
    np.testing.assert_array_equal(a.get_chain(), b.get_chain())
    blobs = a.get_blobs()
    assert blobs.dtype == object
    np.testing.assert_array_equal(np.vectorize(lambda d: d["x0"])(blobs), a.get_chain()[..., 0])


def test_object_blobs_with_dime_resume_exactly_from_the_stored_move_state():
    """Object blobs run on the Python loop; its steps are stored with the moves'
    state too, so DIME resumed from the backend continues as the straight run
    (and does not without the stored state)."""

    def f_obj(x):
        return lp(x), {"x0": float(x[0])}

    straight = run("run_mcmc", cemcee.moves.DIMEMove(), fn=f_obj, nsteps=70, thin_by=1, nwalkers=24)
    assert straight.get_blobs().dtype == object and straight.backend.move_state is not None

    def resumed(forget):
        s = run("run_mcmc", cemcee.moves.DIMEMove(), fn=f_obj, nsteps=40, thin_by=1, nwalkers=24)
        if forget:
            s.backend.move_state = None
        t = cemcee.EnsembleSampler(24, 3, f_obj, moves=cemcee.moves.DIMEMove(), backend=s.backend)
        t.run_mcmc(None, 30)
        return t.get_chain()

    np.testing.assert_array_equal(resumed(False), straight.get_chain())
    assert not np.array_equal(resumed(True), straight.get_chain())


@pytest.mark.parametrize("moves", [mixture, cemcee.moves.DIMEMove,
                                   lambda: cemcee.moves.GaussianMove(0.4, mode="sequential")],
                         ids=["de+snooker+stretch", "dime", "gaussian-sequential"])
@pytest.mark.parametrize("second", ["run_mcmc", "sample"])
def test_resume_from_the_memory_backend_continues_exactly(moves, second):
    """A run stopped after 40 steps and resumed by a new sampler on its backend
    gives the chain of the run that went straight through 70 steps: the
    backend holds the random state and the moves' tuning (DIME's proposal,
    the Gaussian sequential index). Without the stored tuning a resumed
    adaptive move does not continue exactly (what makes this test able to fail)."""
    straight = run("run_mcmc", moves(), fn=lp, nsteps=70, thin_by=1, nwalkers=24)
    assert straight.backend.move_state is not None and '"tuning"' in straight.backend.move_state

    def resumed(forget):
        s = run("run_mcmc", moves(), fn=lp, nsteps=40, thin_by=1, nwalkers=24)
        be = s.backend
        if forget:
            be.move_state = None
        np.random.seed(99)  # the resumed sampler takes its random state from the backend
        t = cemcee.EnsembleSampler(24, 3, lp, moves=moves(), backend=be)
        if second == "run_mcmc":
            t.run_mcmc(None, 30)
        else:
            for _ in t.sample(t.get_last_sample(), iterations=30):
                pass
        return t.get_chain()

    np.testing.assert_array_equal(resumed(False), straight.get_chain())
    if moves is not mixture:  # only adaptive moves depend on their tuning
        assert not np.array_equal(resumed(True), straight.get_chain())


def test_stored_tuning_of_other_moves_is_not_taken():
    s = run("run_mcmc", cemcee.moves.DIMEMove(), fn=lp, nsteps=30, thin_by=1, nwalkers=24)
    t = cemcee.EnsembleSampler(24, 3, lp, moves=cemcee.moves.DIMEMove(aimh_prob=0.2), backend=s.backend)
    t.run_mcmc(None, 10)  # fresh tuning for a different move; runs
    assert '"aimh_prob":0.2' in t.backend.move_state


class Stop(Exception):
    pass


@pytest.mark.parametrize("how,thin_by", [("run_mcmc", 1), ("sample", 2)])
def test_interrupted_run_keeps_what_was_stored_and_continues_exactly(how, thin_by):
    """An exception in the log-probability in the middle of the engine's
    chunk (run_mcmc: the second chunk of 256 steps; sample(): a state's steps)
    keeps the steps stored before it, and leaves the sampler's random state and
    the moves' tuning at the last stored step: continuing from the last sample
    gives the straight run's chain."""
    nw = 24
    n = 400 // thin_by
    straight = run("run_mcmc", cemcee.moves.DIMEMove(), fn=lpv, nsteps=n, thin_by=thin_by, nwalkers=nw,
                   vectorize=True).get_chain()
    calls = [0]
    stop_at = 1 + 300 if how == "run_mcmc" else 1 + 101  # DIME: one call per step; sample(): in the 51st state

    def f(x):
        calls[0] += 1
        if calls[0] == stop_at:
            raise Stop
        return lpv(x)

    np.random.seed(7)
    p0 = np.random.randn(nw, 3)
    s = cemcee.EnsembleSampler(nw, 3, f, moves=cemcee.moves.DIMEMove(), vectorize=True)
    with pytest.raises(Stop):
        if how == "run_mcmc":
            s.run_mcmc(p0, n)
        else:
            for _ in s.sample(p0, iterations=n, thin_by=thin_by):
                pass
    done = 256 if how == "run_mcmc" else 50
    assert s.iteration == done
    np.testing.assert_array_equal(s.random_state[1], s.backend.random_state[1])
    assert s.random_state[2] == s.backend.random_state[2]
    s.run_mcmc(s.get_last_sample(), n - done, thin_by=thin_by)
    np.testing.assert_array_equal(s.get_chain(), straight)


def test_tune_with_builtin_moves_is_the_untuned_chain():
    a = run("sample", mixture(), nsteps=50, thin_by=1)
    np.random.seed(7)
    p0 = np.random.randn(16, 3)
    s = cemcee.EnsembleSampler(16, 3, lp_blobs, moves=mixture())
    for _ in s.sample(p0, iterations=50, tune=True):
        pass
    assert_same(a, s)


def test_store_false_and_endless_iterations():
    np.random.seed(1)
    s = cemcee.EnsembleSampler(16, 3, lp_blobs, moves=mixture())
    got = []
    for i, st in enumerate(s.sample(np.random.randn(16, 3), iterations=None, store=False)):
        got.append(st.coords.copy())
        if i == 9:
            break
    assert len(got) == 10 and s.backend.iteration == 0
    assert not np.array_equal(got[0], got[-1])


def test_climcal_moves_objects_are_moves_with_their_own_parameters():
    """climcal.moves objects map to the same engine moves as emcee's classes
    with the same parameters (climcal.moves.StretchMove's randomize_split
    defaults to False)."""
    np.testing.assert_array_equal(run("run_mcmc", cmoves.StretchMove(), fn=lp, nsteps=40).get_chain(),
                                  run("run_mcmc", cemcee.moves.StretchMove(randomize_split=False), fn=lp,
                                      nsteps=40).get_chain())
    assert not np.array_equal(run("run_mcmc", cmoves.StretchMove(), fn=lp, nsteps=40).get_chain(),
                              run("run_mcmc", cemcee.moves.StretchMove(), fn=lp, nsteps=40).get_chain())
    ours = [(cmoves.DEMove(), 0.8), (cmoves.DESnookerMove(), 0.2)]
    theirs = [(cemcee.moves.DEMove(), 0.8), (cemcee.moves.DESnookerMove(), 0.2)]
    assert_same(run("run_mcmc", ours), run("run_mcmc", theirs))
    assert_same(run("run_mcmc", cmoves.DIMEMove(), fn=lpv, vectorize=True, nwalkers=24),
                run("run_mcmc", cemcee.moves.DIMEMove(), fn=lpv, vectorize=True, nwalkers=24))
    with pytest.raises(RuntimeError, match="twice the number of dimensions"):
        run("run_mcmc", cmoves.DEMove(), fn=lp, nwalkers=4)


def test_python_move_in_a_mixture_with_builtin_and_climcal_moves_samples_a_normal():
    np.random.seed(3)
    s = cemcee.EnsembleSampler(32, 2, lp_blobs_2d, moves=[(PyStretch(), 0.4), (cemcee.moves.DEMove(), 0.3),
                                                          (cmoves.WalkMove(), 0.3)])
    s.run_mcmc(np.random.randn(32, 2), 3000)
    x = s.get_chain(discard=200, flat=True)
    tau = np.max(s.get_autocorr_time(discard=200, quiet=True))
    se = np.sqrt(tau / len(x))
    assert np.all(np.abs(x.mean(axis=0)) < 5 * se)
    assert np.all(np.abs(x.std(axis=0) - 1) < 5 * se)
    np.testing.assert_array_equal(s.get_blobs(), s.get_chain()[..., 0])


def lp_blobs_2d(x):
    return lp(x), float(x[0])


def test_hdf_backend_stores_the_engines_blobs(tmp_path):
    pytest.importorskip("h5py")
    a = run("run_mcmc", mixture(), nsteps=300)
    be = cemcee.backends.HDFBackend(str(tmp_path / "c.h5"))
    b = run("run_mcmc", mixture(), nsteps=300, backend=be)
    assert_same(a, b)
    np.testing.assert_array_equal(cemcee.backends.HDFBackend(str(tmp_path / "c.h5"), read_only=True).get_blobs(),
                                  a.get_blobs())


def test_changed_move_parameters_take_effect_at_the_next_run():
    np.random.seed(0)
    move = cemcee.moves.DEMove()
    s = cemcee.EnsembleSampler(16, 3, lp, moves=move)
    s.run_mcmc(np.random.randn(16, 3), 5)
    move.sigma = 0.5
    s.run_mcmc(None, 5)
    assert '"sigma":0.5' in s.backend.move_state and s.iteration == 10


@pytest.mark.skipif(not hasattr(cemcee.backends.HDFBackend, "move_state"),
                    reason="HDFBackend does not store the move state yet (interface.md: climcal_move_state)")
def test_resumed_dime_from_an_hdf_file_continues_exactly(tmp_path):
    pytest.importorskip("h5py")
    straight = run("run_mcmc", cemcee.moves.DIMEMove(), fn=lp, nsteps=70, thin_by=1, nwalkers=24).get_chain()
    fn = str(tmp_path / "dime.h5")
    run("run_mcmc", cemcee.moves.DIMEMove(), fn=lp, nsteps=40, thin_by=1, nwalkers=24,
        backend=cemcee.backends.HDFBackend(fn))
    np.random.seed(99)
    t = cemcee.EnsembleSampler(24, 3, lp, moves=cemcee.moves.DIMEMove(), backend=cemcee.backends.HDFBackend(fn))
    t.run_mcmc(None, 30)
    np.testing.assert_array_equal(t.get_chain(), straight)
