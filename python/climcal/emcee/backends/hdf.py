"""The HDF5 backend (emcee's ``backends.HDFBackend``), in emcee's layout.

A group (``name``, default ``mcmc``) with attrs ``version``, ``nwalkers``,
``ndim``, ``has_blobs``, ``iteration`` and ``random_state_0`` … ``random_state_4``
(the numpy ``RandomState`` state), datasets ``chain`` (iteration, nwalkers,
ndim), ``log_prob`` (iteration, nwalkers), ``accepted`` (nwalkers) and
``blobs`` (iteration, nwalkers) when there are blobs — so emcee's own
``HDFBackend`` reads what this one writes, and the other way round.

Where it differs from emcee's: emcee opens, writes and closes the file at every
step. This backend keeps the steps of the last ``flush_interval`` seconds
(default 1 s) in memory and writes them with one open, as one commit: rows
first, then ``accepted``, the random state and last ``iteration`` (the commit
point), so a reader, or a run killed at any moment, sees a consistent file that
lags by at most ``flush_interval``. Everything read through the backend (or
the sampler) first writes what is pending, and a run writes everything before
``sample``/``run_mcmc`` return. ``flush_interval=0`` writes at every step, as
emcee.
"""

from __future__ import annotations

import os
import time
from tempfile import NamedTemporaryFile

import numpy as np

from .. import __version__
from ..state import State
from .backend import _NOT_RUN, Backend, _flatten

try:
    import h5py
except ImportError:  # pragma: no cover
    h5py = None

__all__ = ["HDFBackend", "TempHDFBackend", "does_hdf5_support_longdouble"]


def does_hdf5_support_longdouble():
    """Whether this HDF5/h5py stores ``np.longdouble`` without losing precision."""
    if h5py is None:
        return False
    with NamedTemporaryFile(prefix="climcal-emcee-", suffix=".h5", delete=False) as f:
        name = f.name
    try:
        with h5py.File(name, "w") as hf:
            hf.create_dataset("g/data", data=np.ones(1, dtype=np.longdouble))
        with h5py.File(name, "r") as hf:
            return hf["g/data"].dtype == np.longdouble
    finally:
        os.remove(name)


class HDFBackend(Backend):
    """Stores the chain in an HDF5 file (needs h5py).

    Parameters
    ----------
    filename : str or path
    name : str, default "mcmc"
        The group of the chain (several runs can share a file).
    read_only : bool, default False
        Any write raises ``RuntimeError``.
    dtype : numpy dtype, optional
        Of chain and log-probabilities (default float64, or the file's).
    compression, compression_opts : optional
        h5py's dataset compression (e.g. ``"gzip"``, ``4``).
    flush_interval : float, default 1.0
        Seconds of steps kept in memory between writes (0: write every step).
    """

    def __init__(self, filename, name="mcmc", read_only=False, dtype=None, compression=None,
                 compression_opts=None, flush_interval=1.0):
        if h5py is None:
            raise ImportError("you must install 'h5py' to use the HDFBackend")
        self.filename = os.fspath(filename)
        self.name = name
        self.read_only = read_only
        self.compression = compression
        self.compression_opts = compression_opts
        self.dtype_set = dtype is not None
        self.dtype = np.float64 if dtype is None else dtype
        self.flush_interval = float(flush_interval)
        self._pending = []  # (coords, log_prob, blobs, accepted, random_state)
        self._last_flush = time.monotonic()

    def __getstate__(self):
        self.flush()
        d = dict(self.__dict__)
        d["_pending"] = []
        return d

    @property
    def initialized(self):
        if not os.path.exists(self.filename):
            return False
        try:
            with self.open() as f:
                return self.name in f
        except OSError:
            return False

    def open(self, mode="r"):
        """The file as an ``h5py.File`` (``RuntimeError`` for writes when read-only)."""
        if self.read_only and mode != "r":
            raise RuntimeError(
                "The backend has been loaded in read-only mode. Set `read_only = False` to make changes."
            )
        f = h5py.File(self.filename, mode)
        if not self.dtype_set and self.name in f and "chain" in f[self.name]:
            self.dtype = f[self.name]["chain"].dtype
            self.dtype_set = True
        return f

    def _group_opts(self):
        return {"compression": self.compression, "compression_opts": self.compression_opts}

    def reset(self, nwalkers, ndim):
        """Empty (re-create) the group for an ensemble of ``nwalkers`` × ``ndim``."""
        self._pending = []
        with self.open("a") as f:
            if self.name in f:
                del f[self.name]
            g = f.create_group(self.name)
            g.attrs["version"] = __version__
            g.attrs["nwalkers"] = nwalkers
            g.attrs["ndim"] = ndim
            g.attrs["has_blobs"] = False
            g.attrs["iteration"] = 0
            g.create_dataset("accepted", data=np.zeros(nwalkers), **self._group_opts())
            g.create_dataset("chain", (0, nwalkers, ndim), maxshape=(None, nwalkers, ndim), dtype=self.dtype,
                             **self._group_opts())
            g.create_dataset("log_prob", (0, nwalkers), maxshape=(None, nwalkers), dtype=self.dtype,
                             **self._group_opts())

    def has_blobs(self):
        with self.open() as f:
            return bool(f[self.name].attrs["has_blobs"])

    def get_value(self, name, flat=False, thin=1, discard=0):
        if not self.initialized:
            raise AttributeError(_NOT_RUN)
        self.flush()
        with self.open() as f:
            g = f[self.name]
            iteration = int(g.attrs["iteration"])
            if iteration <= 0:
                raise AttributeError(_NOT_RUN)
            if name == "blobs" and not g.attrs["has_blobs"]:
                return None
            v = g[name][discard + thin - 1 : iteration : thin]
        return _flatten(v) if flat else v

    @property
    def shape(self):
        with self.open() as f:
            g = f[self.name]
            return int(g.attrs["nwalkers"]), int(g.attrs["ndim"])

    @property
    def iteration(self):
        with self.open() as f:
            return int(f[self.name].attrs["iteration"]) + len(self._pending)

    @property
    def accepted(self):
        self.flush()
        with self.open() as f:
            return f[self.name]["accepted"][...]

    @property
    def random_state(self):
        if self._pending:
            return self._pending[-1][4]
        with self.open() as f:
            items = sorted((k, v) for k, v in f[self.name].attrs.items() if k.startswith("random_state_"))
        return [v for _, v in items] if items else None

    def grow(self, ngrow, blobs):
        """Make room for ``ngrow`` more steps (``blobs``: the current blobs, for their dtype)."""
        self.flush()
        self._check_blobs(blobs)
        with self.open("a") as f:
            g = f[self.name]
            ntot = int(g.attrs["iteration"]) + ngrow
            g["chain"].resize(ntot, axis=0)
            g["log_prob"].resize(ntot, axis=0)
            if blobs is not None:
                if not g.attrs["has_blobs"]:
                    dt = np.dtype((blobs.dtype, blobs.shape[1:]))
                    g.create_dataset("blobs", (ntot, int(g.attrs["nwalkers"])), maxshape=(None, int(g.attrs["nwalkers"])),
                                     dtype=dt, **self._group_opts())
                else:
                    g["blobs"].resize(ntot, axis=0)
                    if g["blobs"].dtype.shape != blobs.shape[1:]:
                        raise ValueError(
                            f"Existing blobs have shape {g['blobs'].dtype.shape} but new blobs requested with "
                            f"shape {blobs.shape[1:]}"
                        )
                g.attrs["has_blobs"] = True

    def save_step(self, state, accepted):
        """Store one step (written with the next flush)."""
        if self.read_only:
            raise RuntimeError(
                "The backend has been loaded in read-only mode. Set `read_only = False` to make changes."
            )
        if not self._pending:
            self._check(state, accepted)  # one file read per flush, not per step
        else:
            self._check_shapes(state, accepted)
        blobs = None if state.blobs is None else np.array(state.blobs, copy=True)
        self._pending.append((np.array(state.coords, copy=True), np.array(state.log_prob, copy=True), blobs,
                              np.asarray(accepted, dtype=bool).copy(), state.random_state))
        if state.random_state is not None and self._flush_due():
            self.flush()

    def _save_steps(self, coords, log_prob, accepted, blobs, random_state, move_state=None):
        # Many steps at once (the sampler's Rust loop), written with the next flush.
        # (move_state is not stored yet: the interim signature of the Rust writer's.)
        if self.read_only:
            raise RuntimeError(
                "The backend has been loaded in read-only mode. Set `read_only = False` to make changes."
            )
        n = len(coords)
        if n == 0:
            return
        if not self._pending:
            self._check(State(coords[0], log_prob=log_prob[0], blobs=None if blobs is None else blobs[0]), accepted[0])
        for j in range(n):
            self._pending.append((coords[j], log_prob[j], None if blobs is None else blobs[j], accepted[j],
                                  random_state if j == n - 1 else None))
        if self._flush_due():
            self.flush()

    def _flush_due(self):
        return time.monotonic() - self._last_flush >= self.flush_interval

    def _patch_random_state(self, rs):
        if self._pending and self._pending[-1][4] is None:
            self._pending[-1] = self._pending[-1][:4] + (rs,)

    def _check_shapes(self, state, accepted):
        first = self._pending[0]
        if state.coords.shape != first[0].shape or np.shape(state.log_prob) != first[1].shape:
            raise ValueError(f"invalid coordinate dimensions; expected {first[0].shape}")
        if (state.blobs is None) != (first[2] is None):
            raise ValueError("inconsistent use of blobs")
        if accepted.shape != first[3].shape:
            raise ValueError(f"invalid acceptance size; expected {first[3].shape[0]}")

    def flush(self):
        """Write the pending steps (one open, one commit)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.open("a") as f:
            g = f[self.name]
            it = int(g.attrs["iteration"])
            m = len(pending)
            end = it + m
            if g["chain"].shape[0] < end:
                g["chain"].resize(end, axis=0)
                g["log_prob"].resize(end, axis=0)
                if "blobs" in g:
                    g["blobs"].resize(end, axis=0)
            g["chain"][it:end] = np.stack([p[0] for p in pending])
            g["log_prob"][it:end] = np.stack([p[1] for p in pending])
            if pending[0][2] is not None:
                g["blobs"][it:end] = np.stack([p[2] for p in pending])
            g["accepted"][:] += np.sum([p[3] for p in pending], axis=0)
            rs = pending[-1][4]
            if rs is not None:
                for i, v in enumerate(rs):
                    g.attrs[f"random_state_{i}"] = v
            f.flush()
            g.attrs["iteration"] = end  # the commit point

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.flush()

    def __del__(self):
        try:
            if self._pending:
                self.flush()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class TempHDFBackend:
    """A context manager giving an :class:`HDFBackend` on a temporary file (removed on exit)."""

    def __init__(self, dtype=None, compression=None, compression_opts=None):
        self.dtype = dtype
        self.filename = None
        self.compression = compression
        self.compression_opts = compression_opts

    def __enter__(self):
        with NamedTemporaryFile(prefix="climcal-emcee-", suffix=".h5", delete=False) as f:
            self.filename = f.name
        return HDFBackend(self.filename, "test", dtype=self.dtype, compression=self.compression,
                          compression_opts=self.compression_opts)

    def __exit__(self, exc_type, exc, tb):
        os.remove(self.filename)
