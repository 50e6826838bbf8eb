"""The sampler's loop on the Rust engine (``climcal._lib.EmceeEngine``).

:class:`~climcal.emcee.EnsembleSampler` runs here whenever every move is built
in (``climcal.emcee.moves``' classes, or ``climcal.moves`` objects): Rust makes
the steps (the choice of a move of a mixture, the split, the proposals, the
acceptance, the moves' tuning) and keeps the rows of every ``thin_by``-th
step; Python is called back only for the log-probabilities (and blobs) of each
set of proposals. Blobs travel as raw bytes: an array of the run's blob dtype
(any non-object dtype: numbers, structured, sub-arrays) viewed as ``uint8``,
one row per walker, and viewed back as the blob dtype for the backend.
"""

from __future__ import annotations

import json

import numpy as np

from .._ext import native

__all__ = ["engine_specs", "make_engine", "draw_seeds", "engine_step", "BlobBytes", "NO_BLOBS_AT_START"]

_INT64_MAX = np.iinfo(np.int64).max

NO_BLOBS_AT_START = (
    "If you start sampling with a given log_prob, you also need to provide the current list of blobs at that "
    "position."
)


def engine_specs(moves, weights):
    """The moves (with weights) as the engine's JSON list of move tables, or
    None when one of them runs in Python (then so does the sampler's loop)."""
    specs = []
    for m, w in zip(moves, weights):
        spec = getattr(m, "_engine_spec", lambda: None)()
        if spec is None:
            return None
        specs.append(dict(spec, weight=float(w)))
    return json.dumps(specs)


def make_engine(specs):
    """An ``EmceeEngine`` of :func:`engine_specs`' moves, with fresh tuning."""
    return native().EmceeEngine(specs)


def draw_seeds(random, n):
    """``n`` step seeds from the sampler's ``RandomState`` (the same numbers as
    ``n`` draws of one: each is one 64-bit draw)."""
    if n == 1:  # the scalar draw costs a third of a size-1 array's
        return np.array([random.randint(_INT64_MAX, dtype=np.int64)], dtype=np.int64)
    return random.randint(_INT64_MAX, size=n, dtype=np.int64)


def engine_step(engine, state, random, compute):
    """One step of ``engine`` on ``state`` (updated in place), for the loop that
    runs in Python: the seed drawn from ``random``, the log-probabilities (and
    blobs, any dtype, kept in Python) from ``compute(q) -> (log_prob, blobs)``;
    the accepted proposals' blobs are copied into ``state.blobs``. The same step
    as the engine's own loop makes. Returns ``(state, accepted)``."""
    stash = []

    def evaluate(q, idx):
        lp, b = compute(q)
        if b is not None:
            if state.blobs is None:
                raise ValueError(NO_BLOBS_AT_START)
            stash.append((idx, b))
        return np.ascontiguousarray(lp, dtype=np.float64), None

    _, _, acc, _, coords, log_prob, _ = engine.run(
        draw_seeds(random, 1),
        np.ascontiguousarray(state.coords, dtype=np.float64),
        np.ascontiguousarray(state.log_prob, dtype=np.float64),
        None,
        evaluate,
        1,
    )
    accepted = acc[0]
    for idx, b in stash:
        m = accepted[idx]
        state.blobs[idx[m]] = b[m]
    state.coords, state.log_prob = coords, log_prob
    return state, accepted


class BlobBytes:
    """The blobs of a run (``(nwalkers, ...)`` of one dtype) as bytes and back."""

    def __init__(self, blobs):
        self.dtype = blobs.dtype
        self.shape = blobs.shape[1:]

    @staticmethod
    def applies(blobs) -> bool:
        """Whether blobs can travel as bytes (not when they hold Python objects)."""
        return blobs is None or not np.asarray(blobs).dtype.hasobject

    def to_bytes(self, blobs, n):
        """``n`` walkers' blobs as ``uint8 (n, width)`` (cast to the run's dtype
        and broadcast, as assigning into the run's blob array would)."""
        a = np.asarray(blobs, dtype=self.dtype)
        if a.shape != (n, *self.shape):
            a = np.broadcast_to(a, (n, *self.shape))
        return np.ascontiguousarray(a).view(np.uint8).reshape(n, -1)

    def from_bytes(self, raw):
        """``uint8 (..., width)`` back as blobs ``(..., *shape)`` of the run's dtype."""
        lead = raw.shape[:-1]
        out = np.ascontiguousarray(raw).view(self.dtype).reshape(lead + self.shape)
        return out if out.flags.aligned else out.copy()
