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
    # The engine's argument order works too: (state, n_steps, callback).
    seen = []
    s.run_with_progress(s.state, 3, seen.append)
    assert [p.iteration for p in seen] == [13, 14, 15]
    with pytest.raises(TypeError, match="needs a callback"):
        s.run_with_progress(s.state, 3)


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


# -- item 1: observation times and the model's time axis ---------------------------------


def test_mid_year_observations_are_refused_at_construction(params):
    """Before: accepted; initialize() then failed with "32 initial walker(s) have
    log-probability -inf ... use init = "prior"" and no cause."""
    years = np.arange(1850.5, 1900.5)
    t = climcal.Target().add_variable("tas", years, np.zeros(years.size), np.full(years.size, 0.1))
    for build in (
        lambda: make_sampler(params, t),
        lambda: climcal.PointEstimator(params, t, climcal.ModelRunner("one_box")),
    ):
        with pytest.raises(ValueError) as e:
            build()
        msg = str(e.value)
        assert "'tas'" in msg and "1850.5" in msg and "50 observation time(s)" in msg, msg
        assert "1850" in msg and "2020" in msg and "model" in msg, msg


def test_observations_beyond_the_model_are_refused(params):
    years = np.arange(2000.0, 2031.0)
    t = climcal.Target().add_variable("tas", years, np.zeros(years.size), np.full(years.size, 0.1))
    with pytest.raises(ValueError, match=r"'tas'.*10 observation time\(s\).*2021.*2030.*1850.*2020"):
        make_sampler(params, t)


def test_reference_period_outside_the_model_is_refused(params, target):
    t = climcal.Target().add_variable("tas", [1900.0, 1950.0], [0.0, 0.1], [0.1, 0.1]).with_reference_period(1700, 1750)
    with pytest.raises(ValueError, match=r"'tas'.*reference period 1700.1750 holds no model time.*1850.2020"):
        make_sampler(params, t)


def test_datetime_time_column_becomes_decimal_years(params):
    """Before: datetimes became nanoseconds since 1970 (1850-01-01 -> -3.79e18)."""
    import pandas as pd

    years = np.arange(1850, 2021, 5)
    df = pd.DataFrame({"date": pd.to_datetime([f"{y}-01-01" for y in years]), "tas": 0.003 * (years - 1850), "sigma": 0.05})
    t = climcal.Target.from_dataframe(df, time_col="date", uncertainty_col="sigma")
    np.testing.assert_array_equal(t.get("tas")["times"], years.astype(float))
    make_sampler(params, t)  # on the model's annual axis: accepted
    # A DatetimeIndex too; mid-year dates are decimal years and then refused by the exact rule.
    df2 = df.set_index(pd.to_datetime([f"{y}-07-02 12:00" for y in years]))[["tas", "sigma"]]
    t2 = climcal.Target.from_dataframe(df2, uncertainty_col="sigma")
    assert t2.get("tas")["times"][0] == pytest.approx(1850.5, abs=1e-9)
    with pytest.raises(ValueError, match=r"'tas'.*1850.5"):
        make_sampler(params, t2)


# -- item 4: relative errors have no silent defaults --------------------------------------


def test_relative_error_needs_a_floor():
    """Before: sigma = 0.05 |value|, so a zero anomaly failed ("uncertainty 0") and
    near-zero values got sigma ~ 0.0006 K."""
    import pandas as pd

    df = pd.DataFrame({"year": [1850.0, 1851.0, 1852.0], "tas": [0.0, 0.012, 1.0]})
    with pytest.raises(ValueError, match=r"sigma_floor="):
        climcal.Target.from_dataframe(df, time_col="year", relative_error=0.05)
    t = climcal.Target.from_dataframe(df, time_col="year", relative_error=0.05, sigma_floor=0.02)
    np.testing.assert_allclose(t.get("tas")["uncertainties"], [0.02, 0.02, 0.05])
    with pytest.raises(ValueError, match=r"sigma_floor must be > 0"):
        climcal.Target.from_dataframe(df, time_col="year", relative_error=0.05, sigma_floor=0.0)


class _FakeScmRun:
    """The part of scmdata.ScmRun that from_scmdata reads: timeseries()."""

    def __init__(self, series):
        import pandas as pd

        idx = pd.MultiIndex.from_tuples([(v, "K") for v in series], names=["variable", "unit"])
        self._ts = pd.DataFrame(list(series.values()), index=idx, columns=[1850, 1851, 1852])

    def timeseries(self):
        return self._ts


def test_scmdata_without_uncertainty_is_refused():
    """Before: relative_error=0.1 was assumed silently."""
    name = "Surface Air Temperature Change"
    with pytest.raises(ValueError, match=r"'Surface Air Temperature Change' has no uncertainty"):
        climcal.Target.from_scmdata(_FakeScmRun({name: [0.0, 0.1, 0.2]}))
    t = climcal.Target.from_scmdata(_FakeScmRun({name: [0.0, 0.1, 2.0]}), relative_error=0.1, sigma_floor=0.05)
    np.testing.assert_allclose(t.get(name)["uncertainties"], [0.05, 0.05, 0.2])
    both = climcal.Target.from_scmdata(_FakeScmRun({"tas": [0.0, 0.1, 0.2], "tas|sigma": [0.1, 0.2, 0.3]}))
    assert both.variables == ["tas"]
    np.testing.assert_allclose(both.get("tas")["uncertainties"], [0.1, 0.2, 0.3])


# -- item 5: resume refuses a different posterior -------------------------------------------


def test_resume_refuses_a_changed_likelihood_or_target(params, target, tmp_path):
    """Before: resume appended a run with another likelihood/target to the same file."""
    path = tmp_path / "run.h5"
    lik = climcal.GaussianLikelihood(relative_error=0.05)
    s = make_sampler(params, target, likelihood=lik)
    s.run(s.initialize("prior"), n_steps=10, progress=False, checkpoint_path=path)
    with pytest.raises(ValueError, match=r"likelihood.*relative_error=0.05.*relative_error=0"):
        make_sampler(params, target, likelihood=climcal.GaussianLikelihood(0.0)).resume(path, n_steps=5, progress=False)
    obs = target.get("tas")
    other = climcal.Target().add_variable("tas", obs["times"], obs["values"] + 0.01, obs["uncertainties"])
    with pytest.raises(ValueError, match=r"target"):
        make_sampler(params, other, likelihood=lik).resume(path, n_steps=5, progress=False)
    # The same posterior resumes.
    full = make_sampler(params, target, likelihood=lik).resume(path, n_steps=5, progress=False)
    assert full.n_steps == 15


def test_resume_names_thin_and_updates_the_state(params, target, tmp_path):
    """Before: a thin mismatch said "holds another run", and the state object used
    before resume was stale (running it into the file was an error)."""
    path = tmp_path / "run.h5"
    s = make_sampler(params, target)
    state = s.initialize("prior")
    s.run(state, n_steps=10, thin=2, progress=False, checkpoint_path=path)
    with pytest.raises(ValueError, match=r"thin=3.*thin=2"):
        s.resume(path, n_steps=4, thin=3, progress=False)
    s.resume(path, n_steps=4, progress=False)
    assert state.iteration == 14 and s.state is state
    s.run(state, n_steps=6, thin=2, progress=False, checkpoint_path=path)
    back = climcal.load(path)
    assert back.n_steps == 20 and back.n_rows == 10
    ref = make_sampler(params, target)
    straight = ref.run(ref.initialize("prior"), n_steps=20, thin=2, progress=False)
    np.testing.assert_array_equal(back.samples, straight.samples)


# -- item 6: initialize("prior") redraws walkers the model fails for -------------------------


def test_initialize_prior_redraws_failed_walkers(params, target):
    """Before: "6 initial walker(s) have log-probability -inf" when some prior draws
    made the model fail."""
    from conftest import TIMES

    def model(p):
        if p["lambda"] > 2.2:
            raise RuntimeError("unstable")
        return one_box_python(p)

    runner = climcal.ModelRunner(model_factory=model, output_variables=["tas"], times=TIMES)

    def init():
        s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=32, seed=11)
        with pytest.warns(RuntimeWarning, match=r"initialize\('prior'\): redrew (\d+) of 32 walkers") as rec:
            state = s.initialize("prior")
        return state, rec

    a, rec = init()
    n = int(__import__("re").search(r"redrew (\d+) of", str(rec[0].message)).group(1))
    assert 3 <= n <= 20  # P(lambda > 2.2) = 0.3 under Uniform(0.3, 3): ~10 of 32
    assert np.all(np.isfinite(a.log_prob)) and np.all(a.coords[:, 0] <= 2.2)
    b, _ = init()
    np.testing.assert_array_equal(a.coords, b.coords)  # deterministic

    def broken(p):
        raise RuntimeError("always")

    s = climcal.EnsembleSampler(
        parameters=params, target=target, n_walkers=8, seed=1,
        runner=climcal.ModelRunner(model_factory=broken, output_variables=["tas"], times=TIMES),
    )
    with pytest.raises(ValueError, match=r"after 100 prior draws.*always"):
        s.initialize("prior")


# -- item 2: L-BFGS respects bounds and says when the optimum sits on one ---------------------


def test_lbfgs_on_a_bound_matches_nelder_mead_and_warns():
    """Before: L-BFGS "converged" ~377 nats below Nelder-Mead, without a warning, when
    the optimum of an identity-transformed Uniform parameter lay on its bound (the
    old docs example: 0.6 K of warming needs lambda > 3)."""
    params = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0)}).add(
        "heat_capacity", climcal.LogNormal(2.0, 0.5), transform="log"
    )
    years = np.arange(1850.0, 2021.0, 5.0)
    target = (
        climcal.Target().add_variable("tas", years, 0.6 * (years - 1850.0) / 170.0, np.full(years.size, 0.05))
        .with_reference_period(1850, 1900)
    )
    est = climcal.PointEstimator(params, target, climcal.ModelRunner("one_box"))
    with pytest.warns(RuntimeWarning, match=r"on a bound of the prior \(lambda = 3\)"):
        lb = est.optimize("L-BFGS", n_restarts=8, seed=0)
    with pytest.warns(RuntimeWarning, match="on a bound"):
        nm = est.optimize("nelder-mead", n_restarts=8, seed=0)
    assert lb.at_bounds == ["lambda"] and lb.best_params["lambda"] == 3.0  # exactly on it
    # Nelder-Mead reaches the same optimum from inside (within its tolerance); both
    # end far above the old L-BFGS result (-347).
    assert lb.best_ln_posterior >= nm.best_ln_posterior - 0.05, (lb.best_ln_posterior, nm.best_ln_posterior)
    # An interior optimum gives no warning and the right answer.
    truth = one_box_python({"lambda": 1.2, "heat_capacity": 8.0})["tas"][::5]
    t2 = climcal.Target().add_variable("tas", years, truth, np.full(years.size, 0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = climcal.PointEstimator(params, t2, climcal.ModelRunner("one_box"), objective="likelihood").optimize("L-BFGS", n_restarts=4)
    assert r.at_bounds == []
    assert r.best_params["lambda"] == pytest.approx(1.2, rel=1e-3) and r.best_params["heat_capacity"] == pytest.approx(8.0, rel=1e-3)
