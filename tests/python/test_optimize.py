"""PointEstimator from Python: MAP and maximum likelihood with the engine's argmin
optimisers, on the one-box model with synthetic observations."""

import numpy as np
import pytest

import climcal
from conftest import TIMES, TRUE, one_box_python


@pytest.fixture()
def estimator(params, target):
    return climcal.PointEstimator(params, target, climcal.ModelRunner("one_box"), climcal.GaussianLikelihood())


@pytest.mark.parametrize("method", ["L-BFGS", "nelder-mead", "particle-swarm", "random"])
def test_methods_find_the_optimum(estimator, method):
    res = estimator.optimize(method=method, n_restarts=2, seed=1)
    assert list(res.best_params) == ["lambda", "heat_capacity"]
    # 35 points with sigma 0.05 pin lambda to a few percent of its value; random
    # search (1000 prior draws per restart) is only asked to get within 25%.
    tol = 0.25 if method == "random" else 0.1
    assert res.best_params["lambda"] == pytest.approx(TRUE["lambda"], rel=tol)
    assert res.samples.shape == (res.n_evals, 2) and res.likelihoods.shape == (res.n_evals,)
    assert res.best_likelihood == pytest.approx(np.max(res.likelihoods[np.isfinite(res.likelihoods)]), rel=1e-9) \
        or method != "random"
    assert len(res.restarts) == 2 and res.failures == 0


def test_gradient_methods_agree_and_likelihood_objective(params, target, estimator):
    a = estimator.optimize(method="L-BFGS", n_restarts=2, seed=3)
    b = estimator.optimize(method="nelder-mead", n_restarts=2, seed=3, max_iters=2000)
    for k in a.best_params:
        assert a.best_params[k] == pytest.approx(b.best_params[k], rel=1e-3)
    assert a.best_ln_posterior == pytest.approx(a.best_likelihood + a.best_ln_prior, abs=1e-9)
    mle = climcal.PointEstimator(params, target, "one_box", objective="likelihood").optimize(seed=3)
    assert mle.best_likelihood >= a.best_likelihood - 1e-9


def test_python_model_gives_the_rust_result(params, target, estimator):
    py = climcal.PointEstimator(params, target, climcal.ModelRunner(model_factory=one_box_python,
                                                                    output_variables=["tas"], times=TIMES))
    a = estimator.optimize(method="nelder-mead", n_restarts=2, seed=5)
    b = py.optimize(method="nelder-mead", n_restarts=2, seed=5)
    assert a.best_params == b.best_params and a.n_evals == b.n_evals


def test_bad_input(params, target, estimator):
    with pytest.raises(ValueError, match="unknown optimisation method 'bfgs2'.*lbfgs, nelder-mead"):
        estimator.optimize(method="bfgs2")
    with pytest.raises(ValueError, match="n_restarts"):
        estimator.optimize(n_restarts=0)
    with pytest.raises(ValueError, match="unknown objective 'mode'"):
        climcal.PointEstimator(params, target, "one_box", objective="mode")
    with pytest.raises(TypeError, match="ParameterSet"):
        climcal.PointEstimator({"a": 1}, target, "one_box")
