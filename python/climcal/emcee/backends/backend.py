"""The in-memory backend (emcee's ``backends.Backend``)."""

from __future__ import annotations

import numpy as np

from .. import autocorr
from ..state import State

__all__ = ["Backend"]

_NOT_RUN = "you must run the sampler with 'store == True' before accessing the results"


class Backend:
    """Stores the chain in memory as numpy arrays.

    Besides emcee's attributes, ``move_state`` holds the moves' configuration
    and tuning state (JSON) after the last stored step, or None, so that a
    sampler constructed on this backend continues the moves' adaptation
    (DIME's proposal) exactly.

    Parameters
    ----------
    dtype : numpy dtype, default float64
        Of the stored chain and log-probabilities.
    """

    move_state = None  # the moves' state (JSON) of the last stored steps, when the sampler gives one

    def __init__(self, dtype=None):
        self.initialized = False
        self.dtype = np.float64 if dtype is None else dtype

    def reset(self, nwalkers, ndim):
        """Empty the backend for an ensemble of ``nwalkers`` × ``ndim``."""
        self.nwalkers, self.ndim = int(nwalkers), int(ndim)
        self.iteration = 0
        self.accepted = np.zeros(self.nwalkers, dtype=self.dtype)
        self.chain = np.empty((0, self.nwalkers, self.ndim), dtype=self.dtype)
        self.log_prob = np.empty((0, self.nwalkers), dtype=self.dtype)
        self.blobs = None
        self.random_state = None
        self.move_state = None
        self.initialized = True

    def has_blobs(self):
        """Whether the model returns blobs."""
        return self.blobs is not None

    def get_value(self, name, flat=False, thin=1, discard=0):
        if self.iteration <= 0:
            raise AttributeError(_NOT_RUN)
        if name == "blobs" and not self.has_blobs():
            return None
        v = getattr(self, name)[discard + thin - 1 : self.iteration : thin]
        return _flatten(v) if flat else v

    def get_chain(self, **kwargs):
        """The stored samples, ``(steps, nwalkers, ndim)`` (``flat=True``:
        ``(steps·nwalkers, ndim)``); ``thin=`` keeps every ``thin``-th step,
        ``discard=`` drops the first steps."""
        return self.get_value("chain", **kwargs)

    def get_blobs(self, **kwargs):
        """The stored blobs (``None`` without blobs); arguments as :meth:`get_chain`."""
        return self.get_value("blobs", **kwargs)

    def get_log_prob(self, **kwargs):
        """The stored log-probabilities; arguments as :meth:`get_chain`."""
        return self.get_value("log_prob", **kwargs)

    def get_last_sample(self):
        """The last stored :class:`State`."""
        if (not self.initialized) or self.iteration <= 0:
            raise AttributeError(_NOT_RUN)
        it = self.iteration
        blobs = self.get_blobs(discard=it - 1)
        return State(
            self.get_chain(discard=it - 1)[0],
            log_prob=self.get_log_prob(discard=it - 1)[0],
            blobs=None if blobs is None else blobs[0],
            random_state=self.random_state,
        )

    def get_autocorr_time(self, discard=0, thin=1, **kwargs):
        """Integrated autocorrelation time per parameter, in steps (arguments of
        :func:`climcal.emcee.autocorr.integrated_time` pass through)."""
        x = self.get_chain(discard=discard, thin=thin)
        return thin * autocorr.integrated_time(x, **kwargs)

    @property
    def shape(self):
        """``(nwalkers, ndim)``."""
        return self.nwalkers, self.ndim

    def _check_blobs(self, blobs):
        has = self.has_blobs()
        if has and blobs is None:
            raise ValueError("inconsistent use of blobs")
        if self.iteration > 0 and blobs is not None and not has:
            raise ValueError("inconsistent use of blobs")

    def grow(self, ngrow, blobs):
        """Make room for ``ngrow`` more steps (``blobs``: the current blobs, for their dtype)."""
        self._check_blobs(blobs)
        extra = ngrow - (len(self.chain) - self.iteration)
        if extra > 0:
            self.chain = np.concatenate((self.chain, np.empty((extra, self.nwalkers, self.ndim), dtype=self.dtype)))
            self.log_prob = np.concatenate((self.log_prob, np.empty((extra, self.nwalkers), dtype=self.dtype)))
        if blobs is not None:
            dt = np.dtype((blobs.dtype, blobs.shape[1:]))
            if self.blobs is not None and self.blobs.shape[2:] != blobs.shape[1:]:
                raise ValueError(
                    f"Existing blobs have shape {self.blobs.shape[2:]} but new blobs requested with shape "
                    f"{blobs.shape[1:]}"
                )
            n_new = len(self.chain) - (0 if self.blobs is None else len(self.blobs))
            block = np.empty((n_new, self.nwalkers), dtype=dt)
            self.blobs = block if self.blobs is None else np.concatenate((self.blobs, block))

    def _check(self, state, accepted):
        self._check_blobs(state.blobs)
        nwalkers, ndim = self.shape
        if state.coords.shape != (nwalkers, ndim):
            raise ValueError(f"invalid coordinate dimensions; expected {(nwalkers, ndim)}")
        if state.log_prob.shape != (nwalkers,):
            raise ValueError(f"invalid log probability size; expected {nwalkers}")
        if state.blobs is not None and not self.has_blobs():
            raise ValueError("unexpected blobs")
        if state.blobs is None and self.has_blobs():
            raise ValueError("expected blobs, but none were given")
        if state.blobs is not None and len(state.blobs) != nwalkers:
            raise ValueError(f"invalid blobs size; expected {nwalkers}")
        if accepted.shape != (nwalkers,):
            raise ValueError(f"invalid acceptance size; expected {nwalkers}")

    def save_step(self, state, accepted):
        """Store one step (a :class:`State` and the acceptance mask)."""
        self._check(state, accepted)
        i = self.iteration
        if i >= len(self.chain):
            raise ValueError("the backend has no room for this step; call grow() first")
        self.chain[i] = state.coords
        self.log_prob[i] = state.log_prob
        if state.blobs is not None:
            self.blobs[i] = state.blobs
        self.accepted += accepted
        self.random_state = state.random_state
        self.move_state = None  # a step stored without the moves' state
        self.iteration = i + 1

    def _save_steps(self, coords, log_prob, accepted, blobs, random_state, move_state=None):
        # Many steps at once (the sampler's Rust loop): rows (n, nwalkers, ...),
        # acceptance masks, blobs or None, the random state and the moves' state
        # (JSON of the core's MoveState) after the last of them.
        n = len(coords)
        if n == 0:
            return
        nwalkers, ndim = self.shape
        if np.shape(coords)[1:] != (nwalkers, ndim) or np.shape(log_prob) != (n, nwalkers):
            raise ValueError(f"invalid coordinate dimensions; expected {(nwalkers, ndim)}")
        if np.shape(accepted) != (n, nwalkers):
            raise ValueError(f"invalid acceptance size; expected {nwalkers}")
        if (blobs is None) == self.has_blobs():
            raise ValueError("expected blobs, but none were given" if blobs is None else "unexpected blobs")
        i = self.iteration
        if i + n > len(self.chain):
            raise ValueError("the backend has no room for these steps; call grow() first")
        self.chain[i : i + n] = coords
        self.log_prob[i : i + n] = log_prob
        if blobs is not None:
            self.blobs[i : i + n] = blobs
        self.accepted += accepted[0] if n == 1 else np.sum(accepted, axis=0)
        self.random_state = random_state
        self.move_state = move_state
        self.iteration = i + n

    def flush(self):
        """Nothing to write for the in-memory backend."""

    def _patch_random_state(self, rs):
        # The sampler skips reading the random state where no one sees it; a run
        # stopped early gives the current one here.
        if self.iteration > 0 and self.random_state is None:
            self.random_state = rs

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.flush()


def _flatten(v):
    s = list(v.shape[1:])
    s[0] = int(np.prod(v.shape[:2]))
    return v.reshape(s)
