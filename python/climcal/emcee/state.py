"""The state of the ensemble (emcee's ``State``)."""

from __future__ import annotations

from copy import deepcopy

import numpy as np

__all__ = ["State"]


class State:
    """Walkers' positions, log-probabilities, blobs and the random state.

    Unpacks (for emcee 2 code) as ``coords, log_prob, random_state`` and, when
    there are blobs, ``..., blobs``; indexes the same way.

    Parameters
    ----------
    coords : ndarray (nwalkers, ndim) or State
    log_prob : ndarray (nwalkers,), optional
    blobs : ndarray (nwalkers, ...), optional
    random_state : optional
        The sampler's ``random_state`` (a numpy ``RandomState`` state tuple).
    copy : bool, default False
        Deep-copy the inputs.
    """

    __slots__ = ("coords", "log_prob", "blobs", "random_state")

    def __init__(self, coords, log_prob=None, blobs=None, random_state=None, copy=False):
        take = deepcopy if copy else (lambda v: v)
        if isinstance(coords, State) or hasattr(coords, "coords"):
            other = coords
            coords, log_prob, blobs, random_state = other.coords, other.log_prob, other.blobs, other.random_state
            self.coords = take(coords)
        else:
            self.coords = take(np.atleast_2d(coords))
        self.log_prob = take(log_prob)
        self.blobs = take(blobs)
        self.random_state = take(random_state)

    def _items(self):
        if self.blobs is None:
            return (self.coords, self.log_prob, self.random_state)
        return (self.coords, self.log_prob, self.random_state, self.blobs)

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def __getitem__(self, index):
        items = self._items()
        i = index + len(items) if index < 0 else index
        if not 0 <= i < len(items):
            raise IndexError(f"Invalid index '{index}'")
        return items[i]

    def __repr__(self) -> str:
        return f"State({self.coords}, log_prob={self.log_prob}, blobs={self.blobs}, random_state={self.random_state})"
