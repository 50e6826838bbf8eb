"""Proposal moves of climcal's ensemble sampler, with emcee 3.1.6's maths.

Each class describes one move; the moves themselves run in Rust
(``climcal::sampler::moves``). Pass one move, a list of moves, or a weighted
list, as in emcee::

    sampler = climcal.EnsembleSampler(..., moves=[(climcal.moves.DEMove(), 0.8),
                                                  (climcal.moves.DESnookerMove(), 0.2)])

Every draw for a walker comes from that walker's own random stream, so the same
seed gives the same chain for any number of threads or ranks, and a resumed run
continues exactly (the moves' tuning state is stored in the chain file).

Defaults are emcee's, except ``StretchMove.randomize_split`` (``False`` here:
climcal's first/second-half split, which keeps earlier chains; emcee's is
``True``). ``DESnookerMove`` is the corrected snooker update of emcee after 3.1.6
(pull request 531): emcee 3.1.6's own does not sample its target.

References
----------
Goodman & Weare (2010), https://doi.org/10.2140/camcos.2010.5.65 (stretch, walk);
ter Braak (2006), https://doi.org/10.1007/s11222-006-8769-1 (DE);
ter Braak & Vrugt (2008), https://doi.org/10.1007/s11222-008-9104-9 (snooker);
Boehl (2022), https://gregorboehl.com/live/dime_mcmc_boehl.pdf (DIME).
"""

from __future__ import annotations

import json
from numbers import Real

import numpy as np

__all__ = [
    "Move",
    "StretchMove",
    "WalkMove",
    "DEMove",
    "DESnookerMove",
    "KDEMove",
    "GaussianMove",
    "DIMEMove",
    "moves_to_json",
]


class Move:
    """Base class: a move is its ``kind`` and its parameters."""

    kind = ""

    def __init__(self, **params):
        self.params = params

    def to_dict(self) -> dict:
        """The move as the run file's ``[sampler] moves`` table."""
        d = {"kind": self.kind}
        for k, v in self.params.items():
            if v is None:
                continue
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, (np.floating, np.integer, np.bool_)):
                v = v.item()
            d[k] = v
        return d

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


class StretchMove(Move):
    """Goodman & Weare's stretch move: ``Y = X_j + z (X - X_j)``, ``z ~ 1/√z`` on
    ``[1/a, a]``, log factor ``(ndim - 1) ln z``.

    Parameters
    ----------
    a : float, default 2.0
    nsplits : int, default 2
    randomize_split : bool, default False (emcee: True)
    """

    kind = "stretch"

    def __init__(self, a=2.0, nsplits=2, randomize_split=False):
        super().__init__(a=float(a), nsplits=int(nsplits), randomize_split=bool(randomize_split))


class WalkMove(Move):
    """Goodman & Weare's walk move: ``Y ~ N(X, Cov(s helpers))``.

    Parameters
    ----------
    s : int, optional
        Helpers per proposal (default: the whole complement).
    nsplits : int, default 2
    randomize_split : bool, default True
    """

    kind = "walk"

    def __init__(self, s=None, nsplits=2, randomize_split=True):
        super().__init__(s=None if s is None else int(s), nsplits=int(nsplits), randomize_split=bool(randomize_split))


class DEMove(Move):
    """Differential evolution: ``Y = X + γ (X_b - X_a)``, ``γ = γ₀ (1 + σ ξ)``.

    Parameters
    ----------
    sigma : float, default 1e-5
    gamma0 : float, optional
        Default ``2.38 / sqrt(2 ndim)``.
    nsplits : int, default 2
    randomize_split : bool, default True
    """

    kind = "de"

    def __init__(self, sigma=1.0e-5, gamma0=None, nsplits=2, randomize_split=True):
        super().__init__(
            sigma=float(sigma),
            gamma0=None if gamma0 is None else float(gamma0),
            nsplits=int(nsplits),
            randomize_split=bool(randomize_split),
        )


class DESnookerMove(Move):
    """Snooker update (four sets): ``Y = X + γ_s e (e·Z₁ - e·Z₂)``,
    ``e = (X - Z)/|X - Z|``, log factor ``(ndim - 1) ln(|Y - Z| / |X - Z|)``.

    Parameters
    ----------
    gammas : float, default 1.7
    randomize_split : bool, default True
    """

    kind = "de_snooker"

    def __init__(self, gammas=1.7, randomize_split=True):
        super().__init__(gammas=float(gammas), randomize_split=bool(randomize_split))


class KDEMove(Move):
    """Independence proposal from a Gaussian KDE of the complement (scipy's
    ``gaussian_kde``), log factor ``ln kde(X) - ln kde(Y)``.

    Parameters
    ----------
    bw_method : {"scott", "silverman"} or float, default "scott"
    nsplits : int, default 2
    randomize_split : bool, default True
    """

    kind = "kde"

    def __init__(self, bw_method=None, nsplits=2, randomize_split=True):
        if bw_method is not None and not isinstance(bw_method, (str, Real)):
            raise ValueError("bw_method must be 'scott', 'silverman' or a number (callables are not supported)")
        super().__init__(bw_method=bw_method, nsplits=int(nsplits), randomize_split=bool(randomize_split))


class GaussianMove(Move):
    """Metropolis step ``Y = X + f ε``, ``ε ~ N(0, cov)``.

    Parameters
    ----------
    cov : float, 1-D array (variances) or 2-D array
    mode : {"vector", "random", "sequential"}, default "vector"
    factor : float, optional
        ``f = exp(U(-ln factor, ln factor))`` once per step (default ``f = 1``).
    """

    kind = "gaussian"

    def __init__(self, cov, mode="vector", factor=None):
        if mode not in ("vector", "random", "sequential"):
            raise ValueError(f"'{mode}' is not a recognized mode. Please select from: ['vector', 'random', 'sequential']")
        if factor is not None and factor < 1.0:
            raise ValueError("'factor' must be >= 1.0")
        c = np.asarray(cov, dtype=float)
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != c.shape[1]):
            raise ValueError("Invalid proposal scale dimensions")
        super().__init__(cov=c.item() if c.ndim == 0 else c, mode=mode, factor=None if factor is None else float(factor))


class DIMEMove(Move):
    """Differential-independence mixture ensemble move (as in emcwrap).

    Parameters
    ----------
    sigma : float, default 1e-5
    gamma : float, optional
        Default ``2.38 / sqrt(2 ndim)``.
    aimh_prob : float, default 0.1
    df_proposal_dist : float, default 10
    """

    kind = "dime"

    def __init__(self, sigma=1.0e-5, gamma=None, aimh_prob=0.1, df_proposal_dist=10):
        super().__init__(
            sigma=float(sigma),
            gamma=None if gamma is None else float(gamma),
            aimh_prob=float(aimh_prob),
            df_proposal_dist=float(df_proposal_dist),
        )


def moves_to_json(moves) -> str:
    """A move, a list of moves or a list of ``(move, weight)`` as the JSON the
    native sampler reads (weights as given; they need not sum to 1)."""
    if isinstance(moves, Move):
        moves = [moves]
    out = []
    for m in moves:
        if isinstance(m, Move):
            m, w = m, 1.0
        elif isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], Move):
            m, w = m
        else:
            raise TypeError(f"moves must be Move objects or (Move, weight) pairs, got {m!r}")
        d = m.to_dict()
        d["weight"] = float(w)
        out.append(d)
    return json.dumps(out)
