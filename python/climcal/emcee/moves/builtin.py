"""emcee's moves, run by climcal's Rust core.

Each class takes emcee's arguments and describes the matching move of
``climcal::sampler::moves`` (``_core_spec()``). When every move of a sampler
is built in, the sampler runs its whole loop on the Rust engine
(``climcal._lib.EmceeEngine``: the choice of a move of the mixture, the split,
the proposals, their Metropolis–Hastings factors, the acceptance, the tuning
state of DIME and of the Gaussian ``sequential`` mode, the kept rows), which
calls Python only for the log-probabilities. In a mixture with moves written
in Python the sampler steps in Python, and a built-in move's
``propose(model, state)`` makes its step in Rust (a one-move
``climcal._lib.EmceeEngine``, the same step) with one 64-bit seed drawn from ``model.random`` (the sampler's
``RandomState``).

A subclass that overrides ``get_proposal`` runs in Python instead, through the
base class (:class:`~climcal.emcee.moves.RedBlueMove`), as in emcee.

``climcal.moves`` objects (``climcal.moves.DEMove()``, ...) are accepted by
``climcal.emcee.EnsembleSampler(moves=...)`` too, each with its own parameters
(note ``climcal.moves.StretchMove``'s ``randomize_split=False`` default).
"""

from __future__ import annotations

import json

from ... import moves as core_moves
from .._engine import engine_step, make_engine
from .base import TOO_FEW_WALKERS, MHMove, Move, RedBlueMove

__all__ = [
    "StretchMove",
    "WalkMove",
    "DEMove",
    "DESnookerMove",
    "KDEMove",
    "GaussianMove",
    "DIMEMove",
]

class _Native:
    """Mixin: the move's step runs in Rust (a one-move ``climcal._lib.EmceeEngine``)."""

    _red_blue = True
    _native = None

    def _core_spec(self) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __setattr__(self, name, value):
        # A changed parameter makes a fresh native move (and fresh tuning).
        if not name.startswith("_"):
            object.__setattr__(self, "_native", None)
        object.__setattr__(self, name, value)

    def _core(self):
        if self._native is None:
            self._native = make_engine(json.dumps([dict(self._core_spec().to_dict(), weight=1.0)]))
        return self._native

    def _python_proposal(self) -> bool:
        for cls in type(self).__mro__:
            if "get_proposal" in cls.__dict__:
                return cls is not RedBlueMove
        return False

    def propose(self, model, state):
        if self._red_blue:
            nwalkers, ndim = state.coords.shape
            if nwalkers < 2 * ndim and not self.live_dangerously:
                raise RuntimeError(TOO_FEW_WALKERS)
        if self._python_proposal():
            return RedBlueMove.propose(self, model, state)
        return engine_step(self._core(), state, model.random, model.compute_log_prob_fn)

    def _engine_spec(self):
        """The move table of the engine (a dict with ``kind``), or None when
        the move runs in Python (its own ``get_proposal``, ``propose`` or
        ``tune``)."""
        cls = type(self)
        if self._python_proposal() or cls.tune is not Move.tune or cls.propose is not _Native.propose:
            return None
        return self._core_spec().to_dict()

    def _check_walkers_for(self, nwalkers, ndim):
        if self._red_blue and nwalkers < 2 * ndim and not self.live_dangerously:
            raise RuntimeError(TOO_FEW_WALKERS)

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_native", None)
        d["_tuning"] = None if self._native is None else self._native.state_json()
        return d

    def __setstate__(self, d):
        tuning = d.pop("_tuning", None)
        self.__dict__.update(d)
        if tuning is not None:
            self._core().set_state_json(tuning)


class _CoreMove(_Native, Move):
    """A ``climcal.moves`` object (``climcal.moves.DEMove()``, ...) as a move
    of ``climcal.emcee``, with the object's own parameters."""

    live_dangerously = False

    def __init__(self, spec):
        self._spec = spec
        self._red_blue = spec.kind not in ("gaussian", "dime")

    def _core_spec(self):
        return self._spec

    def _python_proposal(self):
        return False

    def __repr__(self):
        return repr(self._spec)


def as_move(m):
    """``m``, or a ``climcal.moves`` object as a :class:`_CoreMove`."""
    return _CoreMove(m) if isinstance(m, core_moves.Move) else m


class StretchMove(_Native, RedBlueMove):
    """Goodman & Weare's stretch move (emcee's default): ``Y = X_j + z (X - X_j)``,
    ``z ~ g(z) ∝ 1/√z`` on ``[1/a, a]``, log factor ``(ndim - 1) ln z``.

    Parameters
    ----------
    a : float, default 2.0
    nsplits, randomize_split, live_dangerously :
        As :class:`RedBlueMove` (``randomize_split=True`` as in emcee).
    """

    def __init__(self, a=2.0, **kwargs):
        self.a = a
        super().__init__(**kwargs)

    def _core_spec(self):
        return core_moves.StretchMove(self.a, self.nsplits, self.randomize_split)


class WalkMove(_Native, RedBlueMove):
    """Goodman & Weare's walk move: ``Y ~ N(X, Cov(S))`` for ``s`` random
    helpers ``S`` of the complement (all of it when ``s`` is None)."""

    def __init__(self, s=None, **kwargs):
        self.s = s
        super().__init__(**kwargs)

    def _core_spec(self):
        return core_moves.WalkMove(self.s, self.nsplits, self.randomize_split)


class DEMove(_Native, RedBlueMove):
    """Differential evolution (ter Braak 2006; Nelson et al. 2013):
    ``Y = X + γ (X_b - X_a) + ε``, ``γ = γ₀ (1 + σ ξ)``.

    Parameters
    ----------
    sigma : float, default 1e-5
    gamma0 : float, optional
        Default ``2.38 / sqrt(2 ndim)``.
    """

    def __init__(self, sigma=1.0e-5, gamma0=None, **kwargs):
        self.sigma = sigma
        self.gamma0 = gamma0
        super().__init__(**kwargs)

    def _core_spec(self):
        return core_moves.DEMove(self.sigma, self.gamma0, self.nsplits, self.randomize_split)


class DESnookerMove(_Native, RedBlueMove):
    """Differential-evolution snooker update (ter Braak & Vrugt 2008), on four
    sets as in emcee. climcal's is the corrected update (emcee pull request
    531): emcee 3.1.6's own omits part of the Jacobian."""

    def __init__(self, gammas=1.7, **kwargs):
        self.gammas = gammas
        kwargs["nsplits"] = 4
        super().__init__(**kwargs)

    def _core_spec(self):
        return core_moves.DESnookerMove(self.gammas, self.randomize_split)


class KDEMove(_Native, RedBlueMove):
    """Independence proposal from a Gaussian KDE of the complementary sets
    (``bw_method``: ``"scott"`` (default), ``"silverman"`` or a factor)."""

    def __init__(self, bw_method=None, **kwargs):
        self.bw_method = bw_method
        super().__init__(**kwargs)

    def _core_spec(self):
        return core_moves.KDEMove(self.bw_method, self.nsplits, self.randomize_split)


class GaussianMove(_Native, MHMove):
    """Metropolis step with a Gaussian proposal ``Y = X + f ε``, ``ε ~ N(0, cov)``.

    Parameters
    ----------
    cov : float, 1-D array (variances) or 2-D array (covariance)
    mode : {"vector", "random", "sequential"}, default "vector"
        All coordinates at once, one random coordinate, or one after the other.
    factor : float, optional
        Scale ``f = exp(U(-ln factor, ln factor))``, drawn once per step.
    """

    _red_blue = False

    def __init__(self, cov, mode="vector", factor=None):
        self._spec = core_moves.GaussianMove(cov, mode, factor)
        self.cov, self.mode, self.factor = cov, mode, factor
        self.ndim = None

    def _core_spec(self):
        return self._spec

    def _python_proposal(self):
        return False


class DIMEMove(_Native, Move):
    """Differential-independence mixture ensemble move (Boehl 2022), as in the
    emcwrap package: with probability ``aimh_prob`` an independence proposal
    from a Student-t fitted to the accepted draws, otherwise a DE step over the
    whole ensemble.

    Parameters
    ----------
    sigma : float, default 1e-5
    gamma : float, optional
        Default ``2.38 / sqrt(2 ndim)``.
    aimh_prob : float, default 0.1
    df_proposal_dist : float, default 10
    """

    _red_blue = False

    def __init__(self, sigma=1.0e-5, gamma=None, aimh_prob=0.1, df_proposal_dist=10):
        self.sigma, self.gamma, self.aimh_prob, self.df_proposal_dist = sigma, gamma, aimh_prob, df_proposal_dist

    def _core_spec(self):
        return core_moves.DIMEMove(self.sigma, self.gamma, self.aimh_prob, self.df_proposal_dist)

    def _python_proposal(self):
        return False
