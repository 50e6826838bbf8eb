"""Point estimates: maximum a posteriori or maximum likelihood, with the engine's
argmin optimisers (L-BFGS, Nelder-Mead, particle swarm, random search)."""

from __future__ import annotations

import warnings

from ._ext import native
from .runner import ModelRunner

__all__ = ["PointEstimator"]


class PointEstimator:
    """Point estimate of a calibration.

    Parameters
    ----------
    params : ParameterSet
    target : Target
    runner : ModelRunner or str
    likelihood : GaussianLikelihood or AR1Likelihood, optional
        Default ``GaussianLikelihood()``.
    objective : {"posterior", "likelihood"}, default "posterior"
        Maximise ``ln p(θ) + ln L(θ)`` (MAP) or ``ln L(θ)`` (maximum likelihood,
        the prior only bounding the search). Both are functions of the physical
        parameters: transforms move the search, not the optimum.
    threads : int, optional
        Threads for built-in Rust models (default: all cores).

    Examples
    --------
    >>> est = climcal.PointEstimator(params, target, runner, likelihood)   # doctest: +SKIP
    >>> res = est.optimize(method="L-BFGS", n_restarts=8)                  # doctest: +SKIP
    >>> res.best_params                                                     # doctest: +SKIP
    """

    def __init__(self, params, target, runner, likelihood=None, *, objective: str = "posterior", threads: int | None = None):
        lib = native()
        if not isinstance(params, lib.ParameterSet):
            raise TypeError(f"params must be a climcal.ParameterSet, got {type(params).__name__}")
        if not isinstance(target, lib.Target):
            raise TypeError(f"target must be a climcal.Target, got {type(target).__name__}")
        if isinstance(runner, str):
            runner = ModelRunner(runner)
        if not isinstance(runner, ModelRunner):
            raise TypeError(f"runner must be a climcal.ModelRunner or a built-in model name, got {type(runner).__name__}")
        if likelihood is None:
            likelihood = lib.GaussianLikelihood()
        if not isinstance(likelihood, (lib.GaussianLikelihood, lib.AR1Likelihood)):
            raise TypeError(
                f"likelihood must be a climcal.GaussianLikelihood or climcal.AR1Likelihood, got {type(likelihood).__name__}"
            )
        self.params, self.target, self.runner, self.likelihood = params, target, runner, likelihood
        from .sampler import check_threads

        self._native = lib.PointEstimator(
            params, target, runner._native_for(params.names), likelihood, objective, check_threads(threads)
        )

    def optimize(
        self,
        method: str = "L-BFGS",
        n_restarts: int = 4,
        *,
        max_iters: int | None = None,
        tolerance: float = 1e-6,
        seed: int = 0,
        n_samples: int | None = None,
        keep_samples: bool = True,
    ):
        """Optimise from ``n_restarts`` prior draws and keep the best.

        Parameters
        ----------
        method : {"L-BFGS", "nelder-mead", "particle-swarm", "random"}, default "L-BFGS"
            ``"random"`` evaluates ``n_samples`` prior draws per restart (default 1000).
        n_restarts : int, default 4
        max_iters : int, optional
            Per restart (default: L-BFGS 1000, Nelder-Mead 200·n_params, swarm 2000).
        tolerance : float, default 1e-6
        seed : int, default 0
        n_samples : int, optional
            Draws per restart for ``"random"``.
        keep_samples : bool, default True
            Keep every evaluated point in ``result.samples``.

        Returns
        -------
        PointEstimateResult
            ``best_params`` (dict), ``best_likelihood``, ``best_ln_posterior``,
            ``samples`` ``(n_evals, n_params)``, ``likelihoods``, ``restarts``,
            ``at_bounds`` (parameters on a bound of their prior), ...

        Notes
        -----
        L-BFGS respects the prior's bounds: it minimises ``f(P(x))``, ``P`` the
        projection onto the support's box in the sampler's space, with the
        projected gradient (one-sided differences at a bound), so an optimum on a
        bound is found on it. A ``RuntimeWarning`` says when the best point sits on
        a bound (``result.at_bounds``).
        """
        if not isinstance(n_restarts, int) or n_restarts < 1:
            raise ValueError(f"n_restarts must be a positive integer, got {n_restarts!r}")
        res = self._native.optimize(method, n_restarts, max_iters, tolerance, seed, n_samples, keep_samples)
        if res.at_bounds:
            where = ", ".join(f"{n} = {res.best_params[n]:.6g}" for n in res.at_bounds)
            warnings.warn(
                f"PointEstimator.optimize: the best point sits on a bound of the prior ({where}); the optimum may lie "
                "outside the prior's support: widen the prior, or read the value as a bound rather than a mode "
                "(a Gaussian ball around it starts walkers outside the support)",
                RuntimeWarning,
                stacklevel=2,
            )
        return res
