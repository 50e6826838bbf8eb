"""Base classes of moves written in Python (emcee's ``Move``, ``MHMove``,
``RedBlueMove``).

Subclass these for a move of your own, as in emcee: a :class:`RedBlueMove`
implements ``get_proposal(s, c, random)`` (proposals for the walkers ``s``
given the complementary sets ``c``, and their log Metropolis–Hastings factors),
an :class:`MHMove` gets a ``proposal_function(coords, random)``. Such moves run
in Python (numpy), step by step as in emcee, so they cost what they cost in
emcee; the built-in moves of :mod:`climcal.emcee.moves` run in Rust.
"""

from __future__ import annotations

import numpy as np

from ..state import State

__all__ = ["Move", "MHMove", "RedBlueMove"]

TOO_FEW_WALKERS = (
    "It is unadvisable to use a red-blue move with fewer walkers than twice the number of dimensions."
)


class Move:
    """Base of every move: ``tune`` (no-op) and ``update``."""

    def tune(self, state, accepted):
        """Adapt the move after a step with ``tune=True`` (no-op by default)."""

    def update(self, old_state, new_state, accepted, subset=None):
        """Copy the accepted proposals of ``new_state`` (rows of ``subset``) into ``old_state``."""
        if subset is None:
            subset = np.ones(len(old_state.coords), dtype=bool)
        into = subset & accepted
        take = accepted[subset]
        old_state.coords[into] = new_state.coords[take]
        old_state.log_prob[into] = new_state.log_prob[take]
        if new_state.blobs is not None:
            if old_state.blobs is None:
                raise ValueError(
                    "If you start sampling with a given log_prob, you also need to provide the current list of "
                    "blobs at that position."
                )
            old_state.blobs[into] = new_state.blobs[take]
        return old_state


class MHMove(Move):
    """Metropolis–Hastings move from a proposal function.

    Parameters
    ----------
    proposal_function : callable
        ``proposal_function(coords (K, ndim), random) -> (q (K, ndim), log_factors (K,))``
        with ``log_factors = ln q(x | x') - ln q(x' | x)``.
    ndim : int, optional
        The only dimension the proposal is valid for.
    """

    def __init__(self, proposal_function, ndim=None):
        self.ndim = ndim
        self.get_proposal = proposal_function

    def propose(self, model, state):
        nwalkers, ndim = state.coords.shape
        if self.ndim is not None and self.ndim != ndim:
            raise ValueError("Dimension mismatch in proposal")
        q, factors = self.get_proposal(state.coords, model.random)
        new_lp, new_blobs = model.compute_log_prob_fn(q)
        accepted = np.log(model.random.rand(nwalkers)) < new_lp - state.log_prob + factors
        new_state = State(q, log_prob=new_lp, blobs=new_blobs)
        return self.update(state, new_state, accepted), accepted


class RedBlueMove(Move):
    """Red–blue ensemble move (Foreman-Mackey et al. 2013): the walkers split
    into ``nsplits`` sets, each updated with the others as complement.

    Parameters
    ----------
    nsplits : int, default 2
    randomize_split : bool, default True
        Shuffle the walkers between sets every step (set sizes stay equal).
    live_dangerously : bool, default False
        Allow fewer walkers than twice the dimension (otherwise ``RuntimeError``).
    """

    def __init__(self, nsplits=2, randomize_split=True, live_dangerously=False):
        self.nsplits = int(nsplits)
        self.randomize_split = randomize_split
        self.live_dangerously = live_dangerously

    def setup(self, coords):
        """Called with the coordinates before each step (no-op by default)."""

    def get_proposal(self, sample, complement, random):
        raise NotImplementedError("The proposal must be implemented by subclasses")

    def _check_walkers(self, state):
        nwalkers, ndim = state.coords.shape
        if nwalkers < 2 * ndim and not self.live_dangerously:
            raise RuntimeError(TOO_FEW_WALKERS)
        return nwalkers, ndim

    def propose(self, model, state):
        nwalkers, _ = self._check_walkers(state)
        self.setup(state.coords)
        accepted = np.zeros(nwalkers, dtype=bool)
        all_inds = np.arange(nwalkers)
        labels = all_inds % self.nsplits
        if self.randomize_split:
            model.random.shuffle(labels)
        for split in range(self.nsplits):
            active = labels == split
            sets = [state.coords[labels == j] for j in range(self.nsplits)]
            q, factors = self.get_proposal(sets[split], sets[:split] + sets[split + 1 :], model.random)
            new_lp, new_blobs = model.compute_log_prob_fn(q)
            for j, f, nlp in zip(all_inds[active], factors, new_lp):
                if f + nlp - state.log_prob[j] > np.log(model.random.rand()):
                    accepted[j] = True
            state = self.update(state, State(q, log_prob=new_lp, blobs=new_blobs), accepted, active)
        return state, accepted
