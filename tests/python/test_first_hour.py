"""A new user's first hour with the Python API (issue 16), one test per problem
found, written from the user's side: what they type, what they should get.

Each test failed on the code before its fix (the failure is named in the test's
docstring)."""

import warnings

import numpy as np
import pytest

import climcal

from conftest import one_box_python


def make_sampler(params, target, **kw):
    kw.setdefault("n_walkers", 8)
    kw.setdefault("seed", 3)
    return climcal.EnsembleSampler(parameters=params, target=target, runner=climcal.ModelRunner("one_box"), **kw)


# -- item 3: discard and thin count steps, everywhere ----------------------------------


@pytest.fixture(scope="module")
def thinned(tmp_path_factory):
    """400 steps stored every 10th step (40 rows), also written to a file."""
    p = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0)}).add(
        "heat_capacity", climcal.LogNormal(2.0, 0.5), transform="log"
    )
    years = np.arange(1850.0, 2021.0, 5.0)
    t = climcal.Target().add_variable("tas", years, one_box_python({"lambda": 1.2, "heat_capacity": 8.0})["tas"][::5], np.full(years.size, 0.05))
    path = tmp_path_factory.mktemp("thin") / "run.h5"
    s = make_sampler(p, t)
    chain = s.run(s.initialize("prior"), n_steps=400, thin=10, progress=False, checkpoint_path=path)
    return chain, climcal.load(path)


def test_discard_and_thin_are_steps(thinned):
    """Before: discard=100 dropped 100 stored rows (an error here: there are 40),
    thin=20 took every 20th row, and to_dataframe's `step` was the row index."""
    for chain in thinned:
        assert chain.n_rows == 40 and chain.thin == 10
        np.testing.assert_array_equal(chain.steps, np.arange(10, 401, 10))
        # discard=100 steps drops the rows of steps 10..100 (10 rows).
        np.testing.assert_array_equal(chain.get_chain(discard=100), chain.samples[10:])
        np.testing.assert_array_equal(chain.flat_samples(discard=100), chain.samples[10:].reshape(-1, 2))
        # thin=20 steps keeps steps 120, 140, ..., 400.
        np.testing.assert_array_equal(chain.get_chain(discard=100, thin=20), chain.samples[11::2])
        np.testing.assert_array_equal(chain.get_log_prob(discard=100, thin=20), chain.log_prob[11::2])
        df = chain.to_dataframe(discard=100, thin=20)
        assert sorted(set(df["step"])) == list(range(120, 401, 20))
        assert len(df) == 15 * chain.n_walkers
        idata = chain.to_arviz(discard=100)
        assert idata.posterior.sizes["draw"] == 30
        np.testing.assert_array_equal(idata.posterior["draw"].values, np.arange(110, 401, 10))
        x = np.moveaxis(chain.samples[10:], 1, 0)
        assert chain.r_hat(discard=100)["lambda"] == pytest.approx(climcal._lib.rhat(x[:, :, 0]), abs=0)
        # A thinning that is not a multiple of the stored one is refused, naming both.
        with pytest.raises(ValueError, match=r"thin=15.*multiple of the chain's stored thinning \(10\)"):
            chain.get_chain(thin=15)
        with pytest.raises(ValueError, match=r"discard=400 steps drops every stored row.*last row is step 400"):
            chain.flat_samples(discard=400)


def test_autocorr_time_is_in_steps(thinned):
    """Before: autocorr_time was in stored rows, so with thin=10 it was 10x smaller
    than emcee's get_autocorr_time (which reports steps)."""
    chain = thinned[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tau = chain.autocorr_time(discard=100, quiet=True)
    rows = np.ascontiguousarray(chain.samples[10:], dtype=float)
    tau_rows = climcal._lib.integrated_time(rows, 5.0, 0.0)[0]
    np.testing.assert_allclose([tau["lambda"], tau["heat_capacity"]], 10 * np.asarray(tau_rows), rtol=1e-12)


def test_trace_plot_shades_discarded_steps(thinned):
    """Before: plot.trace(discard=100) shaded up to 100 * thin = 1000 steps."""
    chain = thinned[0]
    fig = chain.plot.trace(discard=100)
    ax = fig.axes[0]
    spans = [p for p in ax.patches]
    assert len(spans) == 1
    x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
    assert (x0, x1) == (0, 100)
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), chain.steps)


# -- item 7: progress callbacks ----------------------------------------------------------


def test_progress_callable_is_called_with_progress_info(params, target):
    """Before: progress=callable was accepted and never called."""
    s = make_sampler(params, target)
    seen = []
    chain = s.run(s.initialize("prior"), n_steps=30, progress=seen.append)
    assert len(seen) == 30
    assert [p.iteration for p in seen] == list(range(1, 31))
    last = seen[-1]
    assert isinstance(last, climcal.ProgressInfo)
    assert last.total_iterations == 30
    assert last.acceptance_rate == pytest.approx(chain.mean_acceptance_rate(), rel=1e-12)
    assert last.mean_log_prob == pytest.approx(float(np.mean(chain.log_prob[-1])), rel=1e-12)
    # A continued run counts on from where the state is.
    more = []
    s.run(n_steps=5, progress=more.append)
    assert [p.iteration for p in more] == [31, 32, 33, 34, 35] and more[-1].total_iterations == 35


def test_run_with_progress_and_stopping(params, target):
    """The design's run_with_progress(callback): returning False stops after that step."""
    s = make_sampler(params, target)
    calls = []

    def cb(info):
        calls.append(info.iteration)
        return info.iteration < 12

    chain = s.run_with_progress(cb, s.initialize("prior"), n_steps=100)
    assert calls == list(range(1, 13))
    assert chain.n_rows == 12 and s.state.iteration == 12


# -- item 8: small ones -------------------------------------------------------------------


@pytest.mark.parametrize("threads", [-1, 0, 1.5, "2"])
def test_threads_must_be_a_positive_integer(params, target, threads):
    """Before: threads=-1 gave a bare OverflowError and threads=0 was accepted."""
    with pytest.raises(ValueError, match=r"threads must be a positive integer or None"):
        make_sampler(params, target, threads=threads)
    with pytest.raises(ValueError, match=r"threads must be a positive integer or None"):
        climcal.PointEstimator(params, target, climcal.ModelRunner("one_box"), threads=threads)


def test_checkpoint_every_zero_is_refused(params, target, tmp_path):
    """Before: checkpoint_every=0 was accepted silently (no checkpoint until the end)."""
    s = make_sampler(params, target)
    with pytest.raises(ValueError, match=r"checkpoint_every must be an integer >= 1"):
        s.run(s.initialize("prior"), n_steps=5, progress=False, checkpoint_every=0, checkpoint_path=tmp_path / "a.h5")


def test_bound_without_mass_names_the_prior():
    """Before: the message printed Rust's debug form (Normal { mean: 0.0, ... })."""
    with pytest.raises(ValueError) as e:
        climcal.Bound(climcal.Normal(0.0, 1.0), 50.0, 60.0)
    msg = str(e.value)
    assert "{" not in msg and "Normal(0, 1)" in msg.replace(".0", ""), msg


def test_python_messages_have_no_cli_wording(params, target):
    """Before: "config error: ..." and "use init = \"prior\"" (the run file's spelling)."""
    s = make_sampler(params, target)
    with pytest.raises(ValueError) as e:
        s.initialize(np.full((8, 2), [0.1, 8.0]))  # lambda = 0.1 is outside Uniform(0.3, 3)
    msg = str(e.value)
    assert "config error" not in msg and 'init = "prior"' not in msg, msg
    assert "initialize(" in msg and "walkers [0, 1, 2, 3, 4, 5, 6, 7]" in msg, msg
    with pytest.raises(ValueError) as e:
        climcal.ModelRunner("one_box", times=[1850.0])
    assert "config error" not in str(e.value)


def test_failure_warning_counts_walker_evaluations(params, target):
    """Before: a vectorised model raising once warned "1 evaluation(s)" while
    chain.failures counted every walker of that half-ensemble."""
    calls = {"n": 0}

    def batch(theta):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        from conftest import one_box_batch

        return one_box_batch(theta)

    from conftest import TIMES

    runner = climcal.ModelRunner(model_factory=batch, output_variables=["tas"], times=TIMES, vectorized=True)
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=8, seed=3)
    with pytest.warns(RuntimeWarning) as rec:
        chain = s.run(s.initialize("prior"), n_steps=3, progress=False)
    msg = str(rec[0].message)
    assert chain.failures == 4
    assert msg.startswith("4 model evaluation(s) failed"), msg
    assert "1 call(s) of the Python model raised" in msg and "boom" in msg, msg


def test_nan_model_outputs_warn(params, target):
    """Before: NaN outputs were counted in chain.failures without a word."""
    from conftest import TIMES

    calls = {"n": 0}

    def model(p):
        calls["n"] += 1
        out = one_box_python(p)
        if calls["n"] % 10 == 0:  # every 10th run: NaN at an observation time
            out["tas"][5] = np.nan
        return out

    runner = climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES)
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=8, seed=3)
    state = s.initialize("ball", center={"lambda": 1.2, "heat_capacity": 8.0}, radius=0.01)  # calls 1-8
    with pytest.warns(RuntimeWarning, match=r"^16 model evaluation\(s\) failed.*NaN"):
        chain = s.run(state, n_steps=20, progress=False)  # calls 9-168: 16 of them NaN
    assert chain.failures == 16


def test_overwrite_replaces_an_existing_file(params, target, tmp_path):
    """Before: a second run into the same file raised and there was no overwrite=."""
    path = tmp_path / "run.h5"
    s = make_sampler(params, target)
    s.run(s.initialize("prior"), n_steps=10, progress=False, checkpoint_path=path)
    s2 = make_sampler(params, target, seed=4)
    with pytest.raises(ValueError, match="overwrite=True"):
        s2.run(s2.initialize("prior"), n_steps=6, progress=False, checkpoint_path=path)
    chain = s2.run(s2.initialize("prior"), n_steps=6, progress=False, checkpoint_path=path, overwrite=True)
    back = climcal.load(path)
    assert back.n_steps == 6 and int(back.metadata["seed"]) == 4
    np.testing.assert_array_equal(back.samples, chain.samples)


def test_autocorr_warning_and_is_converged_agree(params, target):
    """Before: autocorr_time(quiet=True) warned "run longer (N < 50 tau)" and then
    is_converged() said True with no hint that it checks R-hat only."""
    s = make_sampler(params, target)
    chain = s.run(s.initialize("prior"), n_steps=200, progress=False)
    with pytest.warns(RuntimeWarning, match=r"is_converged\(use_tau=True\)"):
        chain.autocorr_time(quiet=True)
    assert not chain.is_converged(use_tau=True)
    assert any("50 tau" in r for r in chain.convergence_report(use_tau=True))
