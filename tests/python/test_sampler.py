"""EnsembleSampler from Python: the quick start end to end, reproducibility, Python
models against the same model in Rust (bitwise), Ctrl-C, and bad input."""

import os
import signal
import threading
import warnings

import numpy as np
import pytest

import climcal
from conftest import TIMES, TRUE, one_box_batch, one_box_python


def sampler(params, target, runner, **kw):
    kw.setdefault("seed", 42)
    return climcal.EnsembleSampler(
        parameters=params, target=target, runner=runner, likelihood=climcal.GaussianLikelihood(), **kw
    )


def test_quick_start_end_to_end(params, target):
    """The example of docs/python.md on the built-in one-box model."""
    runner = climcal.ModelRunner("one_box")
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner,
                                likelihood=climcal.GaussianLikelihood(relative_error=0.0), n_walkers=32, seed=42)
    state = s.initialize("prior")
    chain = s.run(state, n_steps=600, progress=False)
    assert chain.samples.shape == (600, 32, 2) and chain.log_prob.shape == (600, 32)
    assert chain.names == ["lambda", "heat_capacity"]
    assert state.iteration == 600 and chain.n_steps == 600
    # Stretch-move acceptance on a 2-D, well-conditioned posterior lands in (0.2, 0.8).
    assert 0.2 < chain.mean_acceptance_rate() < 0.8
    flat = chain.flat_samples(discard=200)
    assert flat.shape == (400 * 32, 2)
    mean, sd = flat.mean(axis=0), flat.std(axis=0)
    # The truth lies within 5 posterior sd of the posterior mean (noise realisation
    # ~1 sd, Monte Carlo error << 1 sd with ~400 effective draws).
    for i, name in enumerate(chain.names):
        assert abs(mean[i] - TRUE[name]) < 5 * sd[i], (name, mean[i], sd[i])
    df = chain.to_dataframe(discard=200)
    assert list(df.columns) == ["step", "walker", "lambda", "heat_capacity", "log_prob"]
    assert len(df) == 400 * 32 and df["step"].min() == 201  # the first kept row is step 201
    assert s.chain is not None and s.chain.n_rows == 600


def test_same_seed_same_chain_and_threads_do_not_matter(params, target):
    def run(seed, threads=None):
        s = sampler(params, target, climcal.ModelRunner("one_box"), seed=seed, threads=threads)
        return s.run(s.initialize("prior"), n_steps=50, progress=False)

    a, b, c = run(7), run(7, threads=1), run(8)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)
    assert not np.array_equal(a.samples, c.samples)


def test_seed_none_is_drawn_and_recorded(params, target):
    s = sampler(params, target, "one_box", seed=None)
    assert isinstance(s.seed, int) and s.seed >= 0
    c1 = s.run(n_steps=5, progress=False)
    s2 = sampler(params, target, "one_box", seed=s.seed)
    np.testing.assert_array_equal(c1.samples, s2.run(n_steps=5, progress=False).samples)


def test_python_callable_model_gives_the_rust_chain_bitwise(params, target):
    rust = sampler(params, target, climcal.ModelRunner("one_box"))
    py = sampler(params, target, climcal.ModelRunner(model_factory=one_box_python, output_variables=["tas"], times=TIMES))
    a = rust.run(rust.initialize("prior"), n_steps=40, progress=False)
    b = py.run(py.initialize("prior"), n_steps=40, progress=False)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)


def test_vectorised_python_model_gives_the_rust_chain_bitwise(params, target):
    rust = sampler(params, target, climcal.ModelRunner("one_box"), store_blobs=True)
    vec = sampler(params, target, climcal.ModelRunner(model_factory=one_box_batch, output_variables=["tas"],
                                                      times=TIMES, vectorized=True), store_blobs=True)
    a = rust.run(rust.initialize("prior"), n_steps=40, progress=False)
    b = vec.run(vec.initialize("prior"), n_steps=40, progress=False)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)
    np.testing.assert_array_equal(a.blobs, b.blobs)


def test_vectorised_model_is_called_once_per_half_step(params, target):
    n_calls = []

    def model(theta):
        n_calls.append(theta.shape)
        return one_box_batch(theta)

    s = sampler(params, target, climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES, vectorized=True))
    s.run(s.initialize("prior"), n_steps=10, progress=False)
    assert len(n_calls) == 1 + 2 * 10  # initialisation + two halves per step
    assert n_calls[0] == (32, 2) and all(sh[0] <= 16 and sh[1] == 2 for sh in n_calls[1:])


def test_blobs_hold_the_model_at_the_observation_times(params, target, observations):
    s = sampler(params, target, "one_box", store_blobs=True)
    chain = s.run(s.initialize("prior"), n_steps=5, progress=False)
    t_obs = observations[0]
    assert chain.blobs.shape == (5, 32, len(t_obs))
    assert chain.blob_layout[0][0] == "tas"
    np.testing.assert_array_equal(chain.blob_layout[0][1], t_obs)
    theta = dict(zip(chain.names, chain.samples[-1, 3]))
    t, out = climcal.ModelRunner("one_box").run(theta)
    np.testing.assert_array_equal(chain.blobs[-1, 3], out["tas"][np.searchsorted(t, t_obs)])


def test_chain_arrays_are_read_only_views_without_copies(params, target):
    s = sampler(params, target, "one_box")
    chain = s.run(n_steps=5, progress=False)
    assert not chain.samples.flags.writeable and not chain.samples.flags.owndata
    assert np.shares_memory(chain.samples, chain._native.samples)
    with pytest.raises(ValueError):
        chain.samples[0, 0, 0] = 1.0


def gauss(x):
    return -0.5 * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2])


def gauss_vec(x):
    return -0.5 * (x[:, 0] * x[:, 0] + x[:, 1] * x[:, 1] + x[:, 2] * x[:, 2])


def test_log_prob_fn_like_emcee_and_vectorised_agree():
    a = climcal.EnsembleSampler(log_prob_fn=gauss, ndim=3, n_walkers=32, seed=3)
    b = climcal.EnsembleSampler(log_prob_fn=gauss_vec, ndim=3, n_walkers=32, seed=3, vectorize=True)
    ca = a.run(a.initialize("ball", center=[0, 0, 0], radius=1.0), n_steps=2000, progress=False)
    cb = b.run(b.initialize("ball", center=[0, 0, 0], radius=1.0), n_steps=2000, progress=False)
    np.testing.assert_array_equal(ca.samples, cb.samples)
    flat = cb.flat_samples(discard=200)
    # N(0, I): with tau ~ 30 steps, 1800 x 32 draws give ~2000 effective draws, so the
    # Monte Carlo error of the mean is ~0.02 and of the sd ~0.016; 0.1 is > 5 of them.
    assert np.all(np.abs(flat.mean(axis=0)) < 0.1)
    assert np.all(np.abs(flat.std(axis=0) - 1.0) < 0.1)
    assert ca.names == ["p0", "p1", "p2"]


def test_keyboard_interrupt_inside_a_python_model_stops_cleanly_and_resumes_exactly(params, target):
    calls = {"n": 0}

    def model(p):
        calls["n"] += 1
        if calls["n"] == 32 + 16 * 7 + 5:  # a few steps in (at most 16 model calls per half-step)
            raise KeyboardInterrupt
        return one_box_python(p)

    runner = climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES)
    s = sampler(params, target, runner)
    state = s.initialize("prior")
    with pytest.raises(KeyboardInterrupt) as e:
        s.run(state, n_steps=20, progress=False)
    first = e.value.chain
    done = state.iteration
    assert 0 < done < 20 and first.n_rows == done
    rest = s.run(state, n_steps=20 - done, progress=False)
    ref = sampler(params, target, climcal.ModelRunner("one_box"))
    full = ref.run(ref.initialize("prior"), n_steps=20, progress=False)
    np.testing.assert_array_equal(np.concatenate([first.samples, rest.samples]), full.samples)
    np.testing.assert_array_equal(s.chain.samples, full.samples)


def test_sigint_stops_a_rust_run(params, target):
    s = sampler(params, target, "one_box")
    state = s.initialize("prior")
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            # thin keeps the chain's reserved buffer small for this long request
            s.run(state, n_steps=10_000_000, thin=1000, progress=False)
    finally:
        timer.cancel()
    assert 0 < state.iteration < 10_000_000
    assert e.value.chain.n_rows == state.iteration // 1000


def test_progress_bar_runs(params, target, capsys):
    s = sampler(params, target, "one_box")
    s.run(n_steps=20, progress=True)
    err = capsys.readouterr().err
    assert "20/20" in err and "acc=" in err


def test_failing_python_model_is_reported(params, target):
    calls = {"n": 0}

    def model(p):
        calls["n"] += 1
        if calls["n"] > 32 and calls["n"] % 50 == 0:  # every 50th call after initialisation
            raise RuntimeError("unstable above 8")
        return one_box_python(p)

    s = sampler(params, target, climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES))
    pos = np.column_stack([np.full(32, 1.0), np.full(32, 8.0)]) + np.random.default_rng(0).normal(0, 0.01, (32, 2))
    with pytest.warns(RuntimeWarning, match="unstable above 8"):
        s.run(s.initialize(pos), n_steps=30, progress=False)

    def broken(p):
        raise TypeError("bad model")

    s = sampler(params, target, climcal.ModelRunner(model_factory=broken, output_variables=["tas"], times=TIMES))
    with pytest.raises(ValueError, match="after 100 prior draws each, 32 walker.*TypeError: bad model"):
        s.initialize("prior")


def test_sampler_bad_input(params, target):
    with pytest.raises(ValueError, match="even"):
        sampler(params, target, "one_box", n_walkers=33)
    with pytest.raises(ValueError, match="fewer than 2 × 2"):
        sampler(params, target, "one_box", n_walkers=2)
    with pytest.raises(TypeError, match="ParameterSet"):
        climcal.EnsembleSampler(parameters={"a": 1}, target=target, runner="one_box")
    with pytest.raises(TypeError, match="Target"):
        climcal.EnsembleSampler(parameters=params, target=[1, 2], runner="one_box")
    with pytest.raises(TypeError, match="ModelRunner"):
        climcal.EnsembleSampler(parameters=params, target=target, runner=3)
    with pytest.raises(ValueError, match="'kappa'.*not a parameter of the model"):
        p = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3), "heat_capacity": climcal.Uniform(1, 20),
                                  "kappa": climcal.Uniform(0, 1)})
        sampler(p, target, "one_box")
    with pytest.raises(ValueError, match="'heat_capacity'.*no prior"):
        sampler(climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3)}), target, "one_box")
    t2 = climcal.Target().add_variable("ohc", [1900.0], [1.0], [0.1])
    with pytest.raises(ValueError, match="'ohc'.*no output of that name"):
        sampler(params, t2, "one_box")
    s = sampler(params, target, "one_box")
    with pytest.raises(ValueError, match="needs center"):
        s.initialize("ball")
    with pytest.raises(ValueError, match="unknown initialisation method 'sobol'"):
        s.initialize("sobol")
    with pytest.raises(ValueError, match=r"shape \[4, 2\].*\(32, 2\)"):
        s.initialize(np.ones((4, 2)))
    outside = np.column_stack([np.full(32, 1.0), np.full(32, 8.0)])
    outside[[3, 5], 0] = 10.0  # lambda outside Uniform(0.3, 3)
    with pytest.raises(ValueError, match=r"2 initial walker.*\[3, 5\]"):
        s.initialize(outside)
    with pytest.raises(ValueError, match="thin"):
        s.run(n_steps=5, thin=0, progress=False)
    with pytest.raises(ValueError, match="n_steps"):
        s.run(n_steps=-1, progress=False)
    with pytest.raises(ValueError, match="ndim"):
        climcal.EnsembleSampler(log_prob_fn=gauss)
    e = climcal.EnsembleSampler(log_prob_fn=gauss, ndim=3)
    with pytest.raises(ValueError, match="method='prior'.*ball"):
        e.initialize("prior")


def test_the_gil_is_released_while_rust_samples(params, target):
    """Python code keeps running in another thread during a built-in-model run: with
    the GIL held for the whole run, the loop below could not observe the worker alive."""
    s = sampler(params, target, "one_box", threads=1)
    state = s.initialize("prior")
    worker = threading.Thread(target=lambda: s.run(state, n_steps=3000, thin=100, progress=False))
    seen_alive = 0
    worker.start()
    while worker.is_alive():
        seen_alive += 1
        sum(range(100))
    worker.join()
    assert state.iteration == 3000
    assert seen_alive > 100
