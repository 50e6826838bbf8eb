"""Read chain files with h5py alone (no compiled extension needed).

The file is emcee's HDF5 layout (group ``mcmc``) plus a ``climcal`` group with
parameter names, priors, the run's config, seed, thinning and the blob layout.
Rows past ``mcmc.attrs["iteration"]`` (the commit point) are ignored, so a file
that is still being written reads consistently.
"""

from __future__ import annotations

import os
import time

import h5py
import numpy as np

from .chain import Chain

__all__ = ["load"]


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _text(v[()])
    return str(v)


def _strings(v) -> list[str]:
    return [_text(x) for x in np.atleast_1d(v)]


def _open(path: str, retries: int = 20):
    """Open read-only without taking HDF5's file lock (the writer holds it briefly
    at each checkpoint); retry while a writer is mid-commit."""
    last = None
    for _ in range(retries):
        try:
            try:
                return h5py.File(path, "r", locking=False)
            except TypeError:  # h5py built without the locking argument
                return h5py.File(path, "r")
        except OSError as exc:
            if not os.path.exists(path):
                raise FileNotFoundError(f"no chain file at {path}") from exc
            last = exc
            time.sleep(0.05)
    raise OSError(f"cannot open chain file {path}: {last}") from last


def _get(group, *keys):
    """First of ``keys`` found as a dataset or attribute of ``group``."""
    if group is None:
        return None
    for k in keys:
        if k in group:
            return group[k][()]
        if k in group.attrs:
            return group.attrs[k]
    return None


def _committed_slot(c, iteration: int):
    """The newest valid state slot whose rows equal the committed ``iteration``."""
    if c is None:
        return None
    best = None
    for name in ("state0", "state1"):
        if name not in c:
            continue
        s = c[name]
        if not bool(s.attrs.get("valid", False)) or int(s.attrs.get("rows", -1)) != iteration:
            continue
        if best is None or int(s.attrs.get("serial", 0)) > int(best.attrs.get("serial", 0)):
            best = s
    return best


def load(path: str | os.PathLike) -> Chain:
    """Read a chain file (climcal's or emcee's ``HDFBackend``) into a ``Chain``.

    Parameters
    ----------
    path : path
        The HDF5 chain file. A file still being written can be read: only rows up
        to the last commit are returned.

    Returns
    -------
    Chain
        Parameter names come from the ``climcal`` group (``p0, p1, ...`` for a
        plain emcee file).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a chain file (no ``mcmc`` group) or is inconsistent.
    """
    path = os.fspath(path)
    with _open(path) as f:
        if "mcmc" not in f:
            raise ValueError(f"{path} is not a chain file: it has no 'mcmc' group (groups: {list(f.keys())})")
        g = f["mcmc"]
        it = int(g.attrs.get("iteration", 0))
        nwalkers = int(g.attrs["nwalkers"])
        ndim = int(g.attrs["ndim"])
        if "chain" not in g:
            samples = np.zeros((0, nwalkers, ndim))
            log_prob = np.zeros((0, nwalkers))
        else:
            if g["chain"].shape[0] < it:
                raise ValueError(f"{path}: 'iteration' says {it} rows but the chain dataset holds {g['chain'].shape[0]}; the file is truncated")
            samples = g["chain"][:it]
            log_prob = g["log_prob"][:it]
        accepted = g["accepted"][()] if "accepted" in g else None
        blobs = None
        if bool(g.attrs.get("has_blobs", False)) and "blobs" in g:
            b = g["blobs"][:it]
            if b.dtype.names is None and b.dtype.kind == "f":
                blobs = b.reshape(it, nwalkers, -1)
        c = f["climcal"] if "climcal" in f else None
        names = _get(c, "param_names")
        names = _strings(names) if names is not None and np.size(names) == ndim else [f"p{i}" for i in range(ndim)]
        thin = int(_get(c, "thin") or 1)
        n_steps, failures = it * thin, 0
        slot = _committed_slot(c, it)
        if slot is not None:
            n_steps = int(slot.attrs.get("iteration", n_steps))
            failures = int(slot.attrs.get("failures", 0))
            if "accepted" in slot:
                accepted = slot["accepted"][()]
        blob_layout = []
        bn = _get(c, "blob_names")
        if bn is not None:
            for label in _strings(bn):
                var, _, t = label.rpartition("@")
                if not blob_layout or blob_layout[-1][0] != var:
                    blob_layout.append((var, []))
                blob_layout[-1][1].append(float(t))
            blob_layout = [(v, np.array(ts)) for v, ts in blob_layout]
        derived = []
        dn = _get(c, "derived_names")
        if dn is not None and blobs is not None:
            du, dd = _get(c, "derived_units"), _get(c, "derived_descriptions")
            dn = _strings(dn)
            du = _strings(du) if du is not None else [""] * len(dn)
            dd = _strings(dd) if dd is not None else [""] * len(dn)
            derived = list(zip(dn, du, dd))
        meta = {"iteration": it, "n_steps": n_steps}
        if c is not None:
            for k, v in c.attrs.items():
                meta[k] = _text(v) if isinstance(v, (bytes, np.bytes_, str)) else (v.tolist() if isinstance(v, np.ndarray) else v)
            for k in ("units", "priors", "transforms"):
                if k in c:
                    meta[k] = _strings(c[k][()])
    return Chain(
        samples,
        log_prob,
        names=names,
        accepted=accepted,
        n_steps=n_steps,
        thin=thin,
        blobs=blobs,
        blob_layout=blob_layout,
        failures=failures,
        path=path,
        metadata=meta,
        derived_quantities=derived,
    )
