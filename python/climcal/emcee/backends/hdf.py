"""The HDF5 backend (emcee's ``backends.HDFBackend``), in emcee's layout.

A group (``name``, default ``mcmc``) with attrs ``version``, ``nwalkers``,
``ndim``, ``has_blobs``, ``iteration`` and ``random_state_0`` … ``random_state_4``
(the numpy ``RandomState`` state), datasets ``chain`` (iteration, nwalkers,
ndim), ``log_prob`` (iteration, nwalkers), ``accepted`` (nwalkers) and
``blobs`` (iteration, nwalkers) when there are blobs — so emcee's own
``HDFBackend`` reads what this one writes, and the other way round.

Where it differs from emcee's: emcee opens, writes and closes the file at every
step, with h5py. Here every write goes through climcal's Rust writer
(``climcal._lib.EmceeH5Writer``, ``src/storage/emcee.rs``), which builds the HDF5
types h5py would for the numpy dtypes and writes the arrays' bytes; h5py only
reads (no h5py handle is open while Rust writes). The backend keeps the steps of
the last ``flush_interval`` seconds (default 1 s) in memory and writes them with
one open, as one commit: rows first, then ``accepted``, the random state, the
moves' state (attr ``climcal_move_state``) and last ``iteration`` (the commit
point), so a reader, or a run killed at any moment, sees a consistent file that
lags by at most ``flush_interval``. Everything read through the backend (or
the sampler) first writes what is pending, and a run writes everything before
``sample``/``run_mcmc`` return. ``flush_interval=0`` writes at every step, as
emcee.
"""

from __future__ import annotations

import functools
import json
import os
import time
from tempfile import NamedTemporaryFile

import numpy as np

from ..._ext import native
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
    """Stores the chain in an HDF5 file (needs h5py to read it).

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
        h5py's dataset compression: ``"gzip"`` (``compression_opts``: the level,
        default 4) or a level 0–9. Other filters (``"lzf"``, ``"szip"``) are
        h5py's own and not in climcal's writer: writing raises ``ValueError``.
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
        # Blocks of steps not yet written:
        # (coords, log_prob, blobs, accepted, random_state, move_state), each array with a leading step axis.
        self._pending = []
        self._last_flush = time.monotonic()
        self._writer_obj = None
        # While a run writes: nwalkers, ndim, has_blobs and the committed iteration, as
        # this backend last wrote them (the checks of each step read no file);
        # None otherwise (read from the file).
        self._layout = None

    def __getstate__(self):
        self.flush()
        d = dict(self.__dict__)
        d["_pending"] = []
        d["_writer_obj"] = None
        d["_layout"] = None
        return d

    def _writer(self):
        """The Rust writer of this group (``climcal._lib.EmceeH5Writer``)."""
        if self._writer_obj is None:
            self._writer_obj = native().EmceeH5Writer(self.filename, self.name, _gzip_level(self.compression,
                                                                                         self.compression_opts))
        return self._writer_obj

    def _check_writable(self):
        if self.read_only:
            raise RuntimeError(
                "The backend has been loaded in read-only mode. Set `read_only = False` to make changes."
            )

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
        """The file as an ``h5py.File`` (``RuntimeError`` for writes when read-only).
        Writes through it bypass the backend's batching: close it before the
        backend writes again."""
        if mode != "r":
            self._check_writable()
        f = h5py.File(self.filename, mode)
        if not self.dtype_set and self.name in f and "chain" in f[self.name]:
            self.dtype = f[self.name]["chain"].dtype
            self.dtype_set = True
        return f

    def reset(self, nwalkers, ndim):
        """Empty (re-create) the group for an ensemble of ``nwalkers`` × ``ndim``."""
        self._check_writable()
        self._pending = []
        self._layout = None
        self._writer().reset(int(nwalkers), int(ndim), _describe(self.dtype), __version__)
        self._layout = {"nwalkers": int(nwalkers), "ndim": int(ndim), "has_blobs": False, "iteration": 0}

    def has_blobs(self):
        if self._layout is not None:
            return self._layout["has_blobs"]
        with self.open() as f:
            return bool(f[self.name].attrs["has_blobs"])

    def get_value(self, name, flat=False, thin=1, discard=0):
        if not self.initialized:
            raise AttributeError(_NOT_RUN)
        self._flush(keep_margin=True)  # reads during a run (convergence checks) keep the run's state
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
        if self._layout is not None:
            return self._layout["nwalkers"], self._layout["ndim"]
        with self.open() as f:
            g = f[self.name]
            return int(g.attrs["nwalkers"]), int(g.attrs["ndim"])

    @property
    def iteration(self):
        pending = sum(len(p[0]) for p in self._pending)
        if self._layout is not None:
            return self._layout["iteration"] + pending
        with self.open() as f:
            return int(f[self.name].attrs["iteration"]) + pending

    @property
    def accepted(self):
        self._flush(keep_margin=True)
        with self.open() as f:
            return f[self.name]["accepted"][...]

    @property
    def random_state(self):
        if self._pending:
            return self._pending[-1][4]
        with self.open() as f:
            items = sorted((k, v) for k, v in f[self.name].attrs.items() if k.startswith("random_state_"))
        return [v for _, v in items] if items else None

    @property
    def move_state(self):
        """The moves' configuration and tuning state (JSON) of the last commit, or ``None``."""
        if self._pending:
            return self._pending[-1][5]  # None: steps stored without the moves' state
        if not self.initialized:
            return None
        with self.open() as f:
            v = f[self.name].attrs.get("climcal_move_state")
        return _text(v)

    def grow(self, ngrow, blobs):
        """Make room for ``ngrow`` more steps (``blobs``: the current blobs, for their dtype)."""
        self._check_writable()
        self.flush()
        self._check_blobs(blobs)
        blob_dt = None
        with self.open() as f:
            g = f[self.name]
            layout = {"nwalkers": int(g.attrs["nwalkers"]), "ndim": int(g.attrs["ndim"]),
                      "has_blobs": bool(g.attrs["has_blobs"]), "iteration": int(g.attrs["iteration"])}
            if blobs is not None:
                blobs = np.asarray(blobs)
                if layout["has_blobs"] and g["blobs"].dtype.shape != blobs.shape[1:]:
                    raise ValueError(
                        f"Existing blobs have shape {g['blobs'].dtype.shape} but new blobs requested with "
                        f"shape {blobs.shape[1:]}"
                    )
        if blobs is not None:
            blob_dt = _describe(np.dtype((blobs.dtype, blobs.shape[1:])))
        self._layout = None
        self._writer().grow(int(ngrow or 0), blob_dt)
        layout["has_blobs"] = layout["has_blobs"] or blobs is not None
        self._layout = layout

    def save_step(self, state, accepted):
        """Store one step (written with the next flush)."""
        self._check_writable()
        if not self._pending:
            self._check(state, accepted)  # one file read per flush, not per step
        else:
            self._check_shapes(state, accepted)
        blobs = None if state.blobs is None else np.array(state.blobs, copy=True)[None]
        self._pending.append((np.array(state.coords, copy=True)[None], np.array(state.log_prob, copy=True)[None],
                              blobs, np.asarray(accepted, dtype=bool).copy()[None], state.random_state, None))
        if state.random_state is not None and self._flush_due():
            self._flush(keep_margin=True)

    def _save_steps(self, coords, log_prob, accepted, blobs, random_state, move_state=None):
        # Many steps at once (the sampler's Rust loop), written with the next flush.
        self._check_writable()
        if not len(coords):
            return
        if not self._pending:
            self._check(State(coords[0], log_prob=log_prob[0], blobs=None if blobs is None else blobs[0]),
                        np.asarray(accepted[0]))
        self._pending.append((coords, log_prob, blobs, np.asarray(accepted, dtype=bool), random_state, move_state))
        if self._flush_due():
            self._flush(keep_margin=True)

    def _flush_due(self):
        return time.monotonic() - self._last_flush >= self.flush_interval

    def _patch_random_state(self, rs):
        if self._pending and self._pending[-1][4] is None:
            self._pending[-1] = self._pending[-1][:4] + (rs,) + self._pending[-1][5:]

    def _check_shapes(self, state, accepted):
        first = self._pending[0]
        if state.coords.shape != first[0].shape[1:] or np.shape(state.log_prob) != first[1].shape[1:]:
            raise ValueError(f"invalid coordinate dimensions; expected {first[0].shape[1:]}")
        if (state.blobs is None) != (first[2] is None):
            raise ValueError("inconsistent use of blobs")
        if accepted.shape != first[3].shape[1:]:
            raise ValueError(f"invalid acceptance size; expected {first[3].shape[1]}")

    def flush(self):
        """Write the pending steps (one commit) and end the run's writes: give back
        the room kept for live readers, and read the layout from the file again
        (another backend may write it next). The sampler calls it when a run ends."""
        self._flush(keep_margin=False)

    def _flush(self, keep_margin):
        self._last_flush = time.monotonic()
        if not keep_margin:
            layout, self._layout = self._layout, None  # the run's writes end here
        if not self._pending:
            if not keep_margin and self._writer_obj is not None:
                self._writer_obj.trim()
            return
        pending, self._pending = self._pending, []
        coords = _cat([p[0] for p in pending])
        log_prob = _cat([p[1] for p in pending])
        blobs = None if pending[0][2] is None else _cat([p[2] for p in pending])
        accepted = _cat([p[3] for p in pending])
        rs = pending[-1][4]
        # The moves' state belongs to the last step: a step stored without one
        # (save_step, the Python loop) removes a stale one from the file ("").
        ms = pending[-1][5] or ""
        c, cd = _raw(coords)
        lp, ld = _raw(log_prob)
        if blobs is not None:
            # Blobs of one walker may have a shape of their own: the HDF5 element is their sub-array.
            b, bd = _raw(blobs, np.dtype((blobs.dtype, blobs.shape[2:])))
        else:
            b = bd = None
        try:
            it = self._writer().append(len(coords), c, cd, lp, ld, b, bd, np.ascontiguousarray(accepted).reshape(-1),
                                       rs, ms, keep_margin)
        except BaseException:
            self._pending = pending + self._pending  # nothing committed: keep the steps
            if not keep_margin:
                self._layout = layout
            raise
        if keep_margin and self._layout is not None:
            self._layout["iteration"] = it

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.flush()

    def __del__(self):
        try:
            if self._pending or self._writer_obj is not None:
                self.flush()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _cat(blocks):
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)



def _text(v):
    """An attribute holding text: a string, or zero-padded UTF-8 bytes (``None`` when absent)."""
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    elif isinstance(v, np.ndarray):
        v = v.tobytes().split(b"\0", 1)[0].decode("utf-8")
    return str(v) or None


def _gzip_level(compression, opts):
    """h5py's ``compression``/``compression_opts`` as a gzip level (``None``: no compression)."""
    if compression is None:
        return None
    if compression == "gzip":
        return 4 if opts is None else int(opts)
    if isinstance(compression, (int, np.integer)) and not isinstance(compression, bool) and 0 <= compression <= 9:
        if opts is not None:
            raise ValueError("conflict in compression options: a gzip level as compression and compression_opts")
        return int(compression)
    raise ValueError(
        f"compression={compression!r} is not available in climcal.emcee's HDFBackend: its writer (Rust, the "
        "system's libhdf5) has gzip only; use compression='gzip' (with compression_opts=0..9) or None"
    )


def _raw(a, dtype=None):
    """``a`` as a flat uint8 view of its C-contiguous bytes (no copy when it is
    contiguous), and the JSON description of its element type (``dtype``, by
    default ``a``'s)."""
    a = np.ascontiguousarray(a)
    return a.reshape(-1).view(np.uint8), _describe(a.dtype if dtype is None else dtype)


def _describe(dtype):
    dt = np.dtype(dtype)
    try:
        return _describe_cached(dt)
    except TypeError:  # an unhashable dtype (metadata)
        return json.dumps(_dtype_tree(dt))


@functools.lru_cache(maxsize=64)
def _describe_cached(dt):
    return json.dumps(_dtype_tree(dt))


def _order(dt):
    o = dt.byteorder
    return "=" if o in "=|" else o


def _float_format(dt):
    if dt.type is np.longdouble and dt.itemsize > 8:
        fi = np.finfo(dt)
        if fi.nmant == 63 and fi.nexp == 15:
            return "native"  # x87 80-bit extended: HDF5's native long double
        if fi.nmant == 112:
            return "quad"
        raise TypeError(f"Unsupported float type ({dt})")
    return "ieee"


def _dtype_tree(dt):
    """The numpy dtype ``dt`` as climcal's Rust writer reads it
    (``climcal::storage::emcee::NpType``), for the HDF5 type h5py creates."""
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"kind": "array", "shape": list(shape), "base": _dtype_tree(base)}
    if dt.names is not None:
        fields = [{"name": n, "offset": dt.fields[n][1], "type": _dtype_tree(dt.fields[n][0])} for n in dt.names]
        return {"kind": "compound", "size": dt.itemsize, "fields": fields}
    meta = dt.metadata or {}
    k = dt.kind
    if meta.get("h5py_opaque"):
        return {"kind": "opaque", "size": dt.itemsize, "tag": "NUMPY:" + dt.descr[0][1]}
    if k == "b":
        return {"kind": "bool"}
    if k in "iu":
        d = {"kind": "int" if k == "i" else "uint", "size": dt.itemsize, "order": _order(dt)}
        if meta.get("enum") is not None:
            d["enum"] = [[str(n), int(v)] for n, v in meta["enum"].items()]
        return d
    if k == "f":
        return {"kind": "float", "size": dt.itemsize, "order": _order(dt), "format": _float_format(dt)}
    if k == "c":
        half = np.dtype(f"{dt.byteorder}f{dt.itemsize // 2}") if dt.itemsize < 32 else np.dtype(np.longdouble)
        return {"kind": "complex", "size": dt.itemsize, "order": _order(dt), "format": _float_format(half)}
    if k == "S":
        return {"kind": "bytes", "size": dt.itemsize, "utf8": meta.get("h5py_encoding") == "utf-8"}
    if k == "V":
        return {"kind": "opaque", "size": dt.itemsize}
    if k == "O":
        raise TypeError(f"Object dtype {dt!r} has no native HDF5 equivalent")
    raise TypeError(f"No conversion path for dtype: {dt!r}")


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
