"""Prior ensembles written by ``climcal ensemble``, read with h5py alone.

An ensemble file holds every member's parameters, total and per-variable
log-likelihood, RMSE against each target variable and the chosen outputs
(group ``ensemble``), and, once the constraints ran, which members passed the
filters, their weights and the drawn constrained ensemble
(``ensemble/constraints``). The drawn members are also stored as a one-step
chain (groups ``mcmc`` and ``climcal``), so ``climcal.load`` reads them as a
``Chain`` with one walker per member.

Examples
--------
>>> ens = climcal.load_ensemble("fair-style.h5")            # doctest: +SKIP
>>> ens.constrained()["lambda"].describe()                   # doctest: +SKIP
>>> climcal.weighted_quantile(ens.column("lambda"), [0.05, 0.5, 0.95], ens.weights)  # doctest: +SKIP
>>> ens.plot.constraints(); ens.plot.corner()                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import json

import numpy as np

from .io import _open, _strings, _text

__all__ = ["Ensemble", "load_ensemble", "weighted_quantile", "kish_ess"]


def _run_log(path: str) -> list[dict]:
    """The sidecar log ``FILE.log`` the CLI appends to (one JSON object per run:
    wall seconds, ranks, threads, host): kept out of the ensemble file so that the
    file does not depend on them. Empty when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def weighted_quantile(values, quantiles, weights=None) -> np.ndarray:
    """Quantiles of ``values`` with non-negative ``weights``.

    Parameters
    ----------
    values : array_like, 1-D
    quantiles : float or array_like in [0, 1]
    weights : array_like, optional
        Same length as ``values`` (default: equal weights). Members with weight 0
        and non-finite values are ignored.

    Notes
    -----
    The weighted form of NumPy's default ("linear", Hyndman & Fan type 7)
    method: sorted values ``x_k`` with cumulative weights ``S_k`` (``S_1 = 0``)
    sit at plotting positions ``p_k = S_k / S_n``, ``S_k = Σ_{j<k} (w_j + w_{j+1}) / 2``
    rescaled to [0, 1], and the quantile interpolates linearly between them. With
    equal weights it equals ``numpy.quantile(values, q)`` exactly.
    """
    x = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != x.shape:
        raise ValueError(f"weights have {w.size} values for {x.size} values")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and >= 0")
    keep = np.isfinite(x) & (w > 0)
    x, w = x[keep], w[keep]
    q = np.asarray(quantiles, dtype=float)
    if x.size == 0:
        return np.full(q.shape, np.nan)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    if x.size == 1:
        return np.full(q.shape, x[0])
    # Type 7 with equal weights puts x_k at (k-1)/(n-1); weighted: the cumulative
    # trapezoid of the weights, normalised.
    s = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]))])
    p = s / s[-1]
    return np.interp(q, p, x)


def kish_ess(weights) -> float:
    """Kish's effective sample size ``(Σw)² / Σw²``."""
    w = np.asarray(weights, dtype=float)
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


@dataclass
class TargetHistogram:
    """A constraint's target distribution as binned for histogram matching."""

    name: str
    edges: np.ndarray
    probabilities: np.ndarray
    dist: dict = field(default_factory=dict)

    def density(self) -> np.ndarray:
        """Target probability density per bin."""
        return self.probabilities / np.diff(self.edges)


class Ensemble:
    """A prior ensemble and, when constrained, its weights and drawn members.

    Attributes
    ----------
    n_members, committed : int
        Members asked for, and members stored (rows past ``committed`` are NaN).
    names, units : list[str]
        Parameters.
    variables : list[str]
        Target variables (columns of ``loglike_by_variable`` and ``rmse``).
    output_names, output_units : list[str]
    parameters : ndarray (committed, n_params)
    loglike : ndarray (committed,)
    loglike_by_variable, rmse : ndarray (committed, n_variables)
    outputs : ndarray (committed, n_outputs)
    derived_names, derived_units : list[str]
        The model's derived quantities (ECS, TCR, … for the two-layer model).
    derived : ndarray (committed, n_derived)
    passed : ndarray of bool or None
        Members that passed every filter.
    weights : ndarray or None
        Weight of every member (0 for those that did not pass).
    drawn : ndarray of int or None
        Indices of the constrained ensemble's members.
    targets : dict[str, TargetHistogram]
    method : str or None
        ``histogram``, ``likelihood`` or ``none``.
    ess, ess_fair : float
        Kish's effective sample size, and fair-calibrate's ``⌊Σ min(w, 1)⌋`` (histogram weighting).
    runs : list[dict]
        The CLI's sidecar log ``FILE.log`` (wall seconds, ranks, threads, host of each
        run), not part of the file; ``wall_seconds`` is their sum (NaN without a log).
    """

    def __init__(self, path: str):
        self.path = str(path)
        with _open(self.path) as f:
            if "ensemble" not in f:
                raise ValueError(f"{path} has no 'ensemble' group: not an ensemble file (for chain files use climcal.load)")
            g = f["ensemble"]
            a = g.attrs
            self.n_members = int(a["n_members"])
            self.committed = int(a["committed"])
            self.failures = int(a.get("failures", 0))
            self.seed = int(a["seed"])
            self.sampling = _text(a.get("sampling", ""))
            self.model = _text(a.get("model", ""))
            self.config_toml = _text(a.get("config_toml", ""))
            s = lambda k: _strings(g[k][()]) if k in g else []  # noqa: E731
            self.names, self.units, self.variables = s("param_names"), s("units"), s("variables")
            self.output_names, self.output_units = s("output_names"), s("output_units")
            self.derived_names, self.derived_units = s("derived_names"), s("derived_units")
            self.priors = [json.loads(p) if p else None for p in s("priors")]
            n = self.committed
            self.parameters = g["parameters"][:n]
            self.loglike = g["loglike"][:n]
            self.loglike_by_variable = g["loglike_by_variable"][:n]
            self.rmse = g["rmse"][:n]
            self.outputs = g["outputs"][:n] if "outputs" in g else np.empty((n, 0))
            self.derived = g["derived"][:n] if "derived" in g else np.empty((n, 0))
            self.passed = self.weights = self.drawn = None
            self.method, self.ess, self.ess_fair, self.targets = None, np.nan, np.nan, {}
            if "constraints" in g:
                c = g["constraints"]
                self.method = _text(c.attrs.get("method", ""))
                self.ess = float(c.attrs.get("ess", np.nan))
                self.ess_fair = float(c.attrs.get("ess_fair", np.nan))
                self.passed = c["passed"][:].astype(bool)
                self.weights = c["weights"][:]
                self.drawn = c["drawn"][:].astype(np.int64)
                self.filters = _strings(c["filters"][()]) if "filters" in c else []
                for name, t in c.get("targets", {}).items():
                    self.targets[name] = TargetHistogram(
                        name, t["edges"][:], t["probabilities"][:], json.loads(_text(t.attrs.get("dist", "{}")))
                    )
        self.runs = _run_log(self.path + ".log")
        self.wall_seconds = float(sum(r.get("seconds", 0.0) for r in self.runs)) if self.runs else np.nan
        self.plot = EnsemblePlot(self)

    @property
    def column_names(self) -> list[str]:
        """Names :meth:`column` knows, as constraints name them."""
        v = self.variables
        return (
            list(self.names)
            + ["loglike"]
            + [f"loglike:{x}" for x in v]
            + [f"rmse:{x}" for x in v]
            + list(self.output_names)
            + list(self.derived_names)
        )

    def column(self, name: str) -> np.ndarray:
        """One quantity for every committed member: a parameter, ``loglike``,
        ``loglike:VAR``, ``rmse:VAR``, an output or a derived quantity."""
        if name in self.names:
            return self.parameters[:, self.names.index(name)]
        if name == "loglike":
            return self.loglike
        if name.startswith("loglike:") and name[8:] in self.variables:
            return self.loglike_by_variable[:, self.variables.index(name[8:])]
        if name.startswith("rmse:") and name[5:] in self.variables:
            return self.rmse[:, self.variables.index(name[5:])]
        if name in self.output_names:
            return self.outputs[:, self.output_names.index(name)]
        if name in self.derived_names:
            return self.derived[:, self.derived_names.index(name)]
        raise KeyError(f"{name!r} is not a stored quantity; the quantities are {self.column_names}")

    def to_dataframe(self, columns: Sequence[str] | None = None):
        """Every committed member as a pandas DataFrame (index: member), with
        ``passed`` and ``weight`` when the constraints ran."""
        import pandas as pd

        cols = list(columns) if columns is not None else self.column_names
        df = pd.DataFrame({c: self.column(c) for c in cols})
        df.index.name = "member"
        if self.weights is not None:
            df["passed"] = self.passed[: self.committed]
            df["weight"] = self.weights[: self.committed]
        return df

    def constrained(self, columns: Sequence[str] | None = None):
        """The drawn constrained ensemble as a DataFrame (index: member)."""
        if self.drawn is None:
            raise ValueError(f"{self.path}: the constraints have not been applied (no [ensemble] constraints, or the run was stopped early)")
        return self.to_dataframe(columns).loc[self.drawn].drop(columns=["passed", "weight"])

    def quantiles(self, name: str, q=(0.05, 0.5, 0.95), weighted: bool = True) -> np.ndarray:
        """Quantiles of a column over the prior ensemble, or weighted by the constraint weights."""
        w = self.weights[: self.committed] if (weighted and self.weights is not None) else None
        return weighted_quantile(self.column(name), q, w)

    def __repr__(self) -> str:
        s = f"<Ensemble {self.path}: {self.committed}/{self.n_members} members, {len(self.names)} parameters"
        if self.drawn is not None:
            s += f", {int(self.passed.sum())} passed, ESS {self.ess:.1f}, {self.drawn.size} drawn ({self.method})"
        return s + ">"


def load_ensemble(path: str) -> Ensemble:
    """Read an ensemble file written by ``climcal ensemble`` (h5py only; works
    while the run writes it: rows up to the last commit are read)."""
    return Ensemble(path)


class EnsemblePlot:
    """``ens.plot.constraints()`` and ``ens.plot.corner()``."""

    def __init__(self, ens: Ensemble):
        self._e = ens

    def constraints(self, names: Sequence[str] | None = None, bins: int = 60):
        """Prior, filtered, weighted and drawn distributions of each constrained
        quantity, with the target density (one panel per target; also every
        filtered column when ``names`` lists them)."""
        import matplotlib.pyplot as plt

        e = self._e
        if e.weights is None:
            raise ValueError(f"{e.path}: no constraints applied yet")
        names = list(names) if names is not None else (list(e.targets) or [n for n in e.column_names if n.startswith("rmse:")])
        ncol = min(3, len(names)) or 1
        nrow = max(1, -(-len(names) // ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
        passed = e.passed[: e.committed]
        w = e.weights[: e.committed]
        for ax, name in zip(axes.flat, names):
            x = e.column(name)
            t = e.targets.get(name)
            if t is not None:
                edges = t.edges
            else:
                lo, hi = np.nanquantile(x, [0.005, 0.995])
                edges = np.linspace(lo, hi, bins + 1)
            fin = np.isfinite(x)
            kw = dict(bins=edges, density=True, histtype="step")
            ax.hist(x[fin], label="prior", color="0.5", **kw)
            if passed.any():
                ax.hist(x[fin & passed], label="filtered", color="C0", **kw)
                ax.hist(x[fin], weights=w[fin], label="weighted", color="C1", **kw)
            if e.drawn is not None and e.drawn.size:
                ax.hist(x[e.drawn], label=f"drawn ({e.drawn.size})", color="C3", **kw)
            if t is not None:
                mid = 0.5 * (t.edges[1:] + t.edges[:-1])
                ax.plot(mid, t.density(), "k-", lw=1.5, label="target")
            ax.set_title(name, fontsize="medium")
            ax.set_yticks([])
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize="x-small")
        fig.tight_layout()
        return fig

    def corner(self, columns: Sequence[str] | None = None, weighted: bool = True, **kwargs):
        """Corner plot of the prior ensemble weighted by the constraint weights
        (``weighted=False``: the drawn members only; ``corner.corner`` keyword
        arguments pass through)."""
        try:
            import corner
        except ImportError as exc:
            raise ImportError("ens.plot.corner needs the corner package: pip install corner") from exc
        e = self._e
        cols = list(columns) if columns is not None else list(e.names)
        x = np.column_stack([e.column(c) for c in cols])
        kwargs.setdefault("labels", cols)
        kwargs.setdefault("quantiles", [0.05, 0.5, 0.95])
        kwargs.setdefault("show_titles", True)
        if weighted and e.weights is not None:
            w = e.weights[: e.committed]
            keep = (w > 0) & np.all(np.isfinite(x), axis=1)
            return corner.corner(x[keep], weights=w[keep], **kwargs)
        if e.drawn is not None:
            return corner.corner(x[e.drawn], **kwargs)
        return corner.corner(x[np.all(np.isfinite(x), axis=1)], **kwargs)
