"""Chain diagnostics computed in Rust against the references on the same arrays:
ArviZ (rank-normalised split R-hat, bulk ESS) and emcee (integrated_time)."""

import numpy as np
import pytest

import climcal

arviz = pytest.importorskip("arviz")
emcee = pytest.importorskip("emcee")


def ar1_chain(n_rows=2000, n_walkers=16, ndim=3, phi=0.9, seed=0, offsets=None):
    """AR(1) walkers (tau = (1+phi)/(1-phi) = 19 for phi = 0.9)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n_rows, n_walkers, ndim))
    e = rng.normal(size=(n_rows, n_walkers, ndim))
    for t in range(1, n_rows):
        x[t] = phi * x[t - 1] + e[t]
    if offsets is not None:
        x += offsets
    return climcal.Chain(x, np.zeros(x.shape[:2]), names=["a", "b", "c"][:ndim],
                         accepted=np.full(n_walkers, n_rows // 2), n_steps=n_rows)


@pytest.fixture(scope="module")
def sampled_chain():
    s = climcal.EnsembleSampler(log_prob_fn=lambda x: -0.5 * float(x @ x), ndim=3, n_walkers=16, seed=5)
    return s.run(s.initialize("ball", center=[1.0, 2.0, 3.0], radius=0.5), n_steps=1500, progress=False)


@pytest.mark.parametrize("which", ["ar1", "sampled"])
def test_r_hat_and_ess_equal_arviz(which, sampled_chain):
    chain = ar1_chain() if which == "ar1" else sampled_chain
    discard = 100
    rh, ess = chain.r_hat(discard=discard), chain.ess(discard=discard)
    for i, name in enumerate(chain.names):
        x = np.moveaxis(chain.samples[discard:, :, i], 1, 0)  # (walkers as chains, draws)
        # Same definitions, same floating-point inputs: agreement to rounding.
        assert rh[name] == pytest.approx(float(arviz.rhat(x)), rel=1e-9), name
        assert ess[name] == pytest.approx(float(arviz.ess(x, method="bulk")), rel=1e-9), name


@pytest.mark.filterwarnings("ignore:the chain is shorter")
@pytest.mark.parametrize("which", ["ar1", "sampled"])
def test_autocorr_time_equals_emcee(which, sampled_chain):
    chain = ar1_chain() if which == "ar1" else sampled_chain
    ours = chain.autocorr_time(discard=50, quiet=True)
    ref = emcee.autocorr.integrated_time(chain.samples[50:], c=5, tol=0)
    np.testing.assert_allclose([ours[n] for n in chain.names], ref, rtol=1e-9)


def test_autocorr_time_known_answer_and_short_chain_error():
    chain = ar1_chain(n_rows=4000, n_walkers=32)
    tau = chain.autocorr_time()
    # AR(1) with phi = 0.9 has tau = 19; 4000 x 32 draws estimate it within ~10%.
    for v in tau.values():
        assert 15 < v < 23
    short = ar1_chain(n_rows=200)
    with pytest.raises(climcal.AutocorrError) as e:
        short.autocorr_time()
    assert set(e.value.tau) == {"a", "b", "c"} and "run longer" in str(e.value)
    with pytest.warns(RuntimeWarning):
        short.autocorr_time(quiet=True)


def test_convergence_rules():
    good = ar1_chain()
    assert good.is_converged()
    # Walkers split into two groups 20 sd apart: R-hat far above 1.1.
    off = np.zeros((1, 16, 3))
    off[:, 8:, 0] = 20 * np.sqrt(1 / (1 - 0.81))
    bad = ar1_chain(offsets=off)
    assert not bad.is_converged()
    assert any("R-hat of a" in r for r in bad.convergence_report())
    assert not ar1_chain(n_rows=200).is_converged(use_tau=True)


def test_acceptance(sampled_chain):
    f = sampled_chain.acceptance_fraction
    assert f.shape == (16,) and np.all((f > 0) & (f < 1))
    assert sampled_chain.mean_acceptance_rate() == pytest.approx(f.mean())
    np.testing.assert_allclose(f, sampled_chain.accepted / 1500)


def test_to_arviz_has_walkers_as_chains(sampled_chain):
    idata = sampled_chain.to_arviz(discard=500)
    post = idata.posterior
    assert dict(post.sizes) == {"chain": 16, "draw": 1000}
    np.testing.assert_array_equal(post["p1"].values, sampled_chain.samples[500:, :, 1].T)
    np.testing.assert_array_equal(idata.sample_stats["lp"].values, sampled_chain.log_prob[500:].T)
    summ = sampled_chain.summary(discard=500)
    assert list(summ.index) == ["p0", "p1", "p2"] and "r_hat" in summ.columns


def test_discard_errors(sampled_chain):
    with pytest.raises(ValueError, match="drops every stored row"):
        sampled_chain.flat_samples(discard=1500)
    with pytest.raises(ValueError, match="non-negative"):
        sampled_chain.r_hat(discard=-1)
