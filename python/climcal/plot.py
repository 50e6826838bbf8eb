"""Plots of a chain (matplotlib; ``corner`` for the corner plot). Each returns the figure."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ChainPlot", "projection"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _rebase(times: np.ndarray, values: np.ndarray, period) -> np.ndarray:
    if period is None:
        return values
    a, b = period
    sel = (times >= a) & (times <= b)
    if not sel.any():
        return values
    return values - values[..., sel].mean(axis=-1, keepdims=True)


class ChainPlot:
    """The ``chain.plot`` namespace."""

    def __init__(self, chain) -> None:
        self._chain = chain

    def _params(self, params: Sequence[str] | None) -> list[int]:
        names = self._chain.names
        if params is None:
            return list(range(len(names)))
        out = []
        for p in params:
            if p not in names:
                raise ValueError(f"no parameter {p!r}; the chain has {names}")
            out.append(names.index(p))
        return out

    def trace(self, discard: int = 0, params: Sequence[str] | None = None, log_prob: bool = True, alpha: float = 0.3):
        """Walker traces: one panel per parameter (and one for the log-probability),
        every walker a line, steps on the x axis; the discarded steps shaded.

        Parameters
        ----------
        discard : int, default 0
            Steps to shade as burn-in (as ``discard`` of the chain's methods).
        params : list of str, optional
            Default: all.
        log_prob : bool, default True
            Add a log-probability panel.
        alpha : float, default 0.3
        """
        plt = _plt()
        c = self._chain
        idx = self._params(params)
        n = len(idx) + (1 if log_prob else 0)
        fig, axes = plt.subplots(n, 1, figsize=(8, 1.8 * n + 0.6), sharex=True, squeeze=False)
        axes = axes[:, 0]
        c._select(discard)  # checks discard as the other methods do
        x = c.steps
        for ax, i in zip(axes, idx):
            ax.plot(x, c.samples[:, :, i], color="k", alpha=alpha, lw=0.5)
            ax.set_ylabel(c.names[i])
        if log_prob:
            lp = np.where(np.isfinite(c.log_prob), c.log_prob, np.nan)
            axes[-1].plot(x, lp, color="C0", alpha=alpha, lw=0.5)
            axes[-1].set_ylabel("log prob")
        if discard:
            for ax in axes:
                ax.axvspan(0, discard, color="0.85", zorder=-1)
        axes[-1].set_xlabel("step")
        fig.tight_layout()
        return fig

    def corner(self, discard: int = 0, params: Sequence[str] | None = None, **kwargs):
        """Corner plot of the flat samples (``corner.corner``; keyword arguments pass through)."""
        try:
            import corner
        except ImportError as exc:
            raise ImportError("chain.plot.corner needs the corner package: pip install 'climcal[corner]'") from exc
        idx = self._params(params)
        flat = self._chain.flat_samples(discard)[:, idx]
        kwargs.setdefault("labels", [self._chain.names[i] for i in idx])
        kwargs.setdefault("quantiles", [0.05, 0.5, 0.95])
        kwargs.setdefault("show_titles", True)
        return corner.corner(flat, **kwargs)

    def autocorr(self, discard: int = 0, n_points: int = 10, c: float = 5.0):
        """Autocorrelation-time estimate against chain length (as in emcee's
        tutorial), one line per parameter, with the ``N/50`` line: the estimate
        is reliable where the chain is longer than 50 τ (below the line)."""
        plt = _plt()
        from ._ext import native

        ch = self._chain
        x = np.ascontiguousarray(ch.get_chain(discard=discard), dtype=float)
        n_rows = x.shape[0]
        if n_rows < 4:
            raise ValueError(f"chain.plot.autocorr needs at least 4 rows after discard, got {n_rows}")
        ns = np.unique(np.geomspace(min(10, n_rows), n_rows, n_points).astype(int))
        taus = np.array([native().integrated_time(x[:n], c, 0.0)[0] for n in ns])
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, name in enumerate(ch.names):
            ax.loglog(ns, taus[:, i], "o-", label=name)
        ax.loglog(ns, ns / 50.0, "k--", label=r"$N/50$")
        ax.set_xlabel("stored rows N" if ch.thin == 1 else f"stored rows N (every {ch.thin}th step)")
        ax.set_ylabel(r"$\hat\tau$ (rows)")
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def acceptance(self):
        """Acceptance fraction per walker, with the mean and the usual 0.2-0.5 band."""
        plt = _plt()
        f = self._chain.acceptance_fraction
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.axhspan(0.2, 0.5, color="0.9", zorder=-1)
        ax.bar(np.arange(len(f)), f, color="C0")
        ax.axhline(f.mean(), color="k", ls="--", label=f"mean {f.mean():.3f}")
        ax.set_xlabel("walker")
        ax.set_ylabel("acceptance fraction")
        ax.set_ylim(0, 1)
        ax.legend()
        fig.tight_layout()
        return fig

    def posterior_predictive(
        self,
        runner=None,
        target=None,
        n_samples: int = 100,
        discard: int = 0,
        seed: int | None = 0,
        quantiles: tuple[float, float] = (0.05, 0.95),
    ):
        """Observations against the model for posterior draws: median and a band
        per target variable (one panel each).

        Uses the stored blobs (model values at the observation times) when the
        chain has them; otherwise runs ``runner`` for ``n_samples`` random draws.

        Parameters
        ----------
        runner : ModelRunner, optional
            Needed when the chain has no blobs.
        target : Target
            The observations (error bars: 1-σ).
        n_samples : int, default 100
        discard : int, default 0
        seed : int, optional
            For the choice of draws (default 0).
        quantiles : (float, float), default (0.05, 0.95)
        """
        plt = _plt()
        if target is None:
            raise ValueError("posterior_predictive needs target= (the observations)")
        ch = self._chain
        rng = np.random.default_rng(seed)
        flat = ch.flat_samples(discard)
        pick = rng.choice(flat.shape[0], size=min(n_samples, flat.shape[0]), replace=False)
        variables = list(target.variables)
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if ch.blobs is not None and ch.blob_layout:
            flat_blobs = ch.blobs[ch._rows(discard)].reshape(-1, ch.blobs.shape[-1])[pick]
            off = 0
            for name, times in ch.blob_layout:
                curves[name] = (times, flat_blobs[:, off : off + len(times)])
                off += len(times)
            source = "stored blobs"
        else:
            if runner is None:
                raise ValueError("this chain has no stored blobs: pass runner= to run the model for the draws")
            runs = []
            for row in flat[pick]:
                runs.append(runner.run(dict(zip(ch.names, row))))
            times = runs[0][0]
            for name in variables:
                vals = np.array([r[1][name] for r in runs])
                obs = target.get(name)
                curves[name] = (times, _rebase(times, vals, obs["reference_period"]))
            source = f"{len(runs)} model runs"
        fig, axes = plt.subplots(len(variables), 1, figsize=(8, 3.2 * len(variables)), squeeze=False)
        for ax, name in zip(axes[:, 0], variables):
            obs = target.get(name)
            if name in curves:
                t, v = curves[name]
                lo, med, hi = np.nanquantile(v, [quantiles[0], 0.5, quantiles[1]], axis=0)
                ax.fill_between(t, lo, hi, color="C1", alpha=0.3, label=f"{int(100 * quantiles[0])}-{int(100 * quantiles[1])}%")
                ax.plot(t, med, color="C1", label="posterior median")
            ax.errorbar(obs["times"], obs["values"], yerr=obs["uncertainties"], fmt=".", color="k", ms=3, lw=0.5, label="observed")
            ax.set_ylabel(name)
            ax.legend(fontsize="small")
        axes[-1, 0].set_xlabel("time")
        axes[0, 0].set_title(f"posterior predictive ({source})")
        fig.tight_layout()
        return fig


def projection(
    projections,
    scenarios: Sequence[str] | None = None,
    output: str = "Surface Temperature",
    baseline=(1850, 1900),
    observed=None,
    observed_label: str = "observed",
    start: float = 1850,
    band=(5, 95),
    ax=None,
    colors: dict | None = None,
):
    """Median and a 5-95 % band per scenario, against the observed record.

    Parameters
    ----------
    projections : Projections
        From ``Chain.project`` or ``climcal.load_projection``.
    scenarios : list of str, optional
        Default: all, in their order.
    output : str, default "Surface Temperature"
    baseline : (int, int) or None, default (1850, 1900)
        Each draw (and the observations) is shown relative to its mean over it.
    observed : (years, values), pandas Series or DataFrame, optional
        The observed record (e.g. HadCRUT5 annual GMST), rebased to ``baseline``
        over the years it covers; a DataFrame's first column is used.
    observed_label : str, default "observed"
    start : float, default 1850
        First year shown.
    band : (float, float), default (5, 95)
        Percentiles of the shaded band.
    ax : matplotlib Axes, optional
    colors : dict, optional
        Scenario → colour (default: the AR6 SSP colours for the built-in names).

    Returns
    -------
    matplotlib Figure
    """
    plt = _plt()
    ar6 = {"ssp119": "#00a9cf", "ssp126": "#003466", "ssp245": "#f69320", "ssp370": "#df0000", "ssp585": "#980002"}
    colors = {**ar6, **(colors or {})}
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    else:
        fig = ax.figure
    years = projections.years
    sel = years >= start
    nh = projections.n_history
    for s in scenarios or projections.scenarios:
        lo, med, hi = projections.quantiles(s, q=(band[0], 50, band[1]), output=output, baseline=baseline)
        c = colors.get(s)
        label = projections.info.get(s, {}).get("label", s)
        fut = sel.copy()
        fut[: max(nh - 1, 0)] = False
        ax.fill_between(years[fut], lo[fut], hi[fut], color=c, alpha=0.2, lw=0)
        ax.plot(years[fut], med[fut], color=c, lw=1.8, label=f"{label} (median, {band[0]:g}-{band[1]:g} %)")
    # The historical part is common to all scenarios: drawn once, in grey.
    s0 = (scenarios or projections.scenarios)[0]
    lo, med, hi = projections.quantiles(s0, q=(band[0], 50, band[1]), output=output, baseline=baseline)
    hist = sel.copy()
    hist[nh:] = False
    ax.fill_between(years[hist], lo[hist], hi[hist], color="0.5", alpha=0.25, lw=0)
    ax.plot(years[hist], med[hist], color="0.3", lw=1.4, label="model, historical")
    if observed is not None:
        if hasattr(observed, "index") and hasattr(observed, "values"):
            ot = np.asarray(observed.index, dtype=float)
            ov = np.asarray(observed.values, dtype=float)
            if ov.ndim == 2:
                ov = ov[:, 0]
        else:
            ot, ov = (np.asarray(v, dtype=float) for v in observed)
        ov = _rebase(ot, ov, baseline)
        ax.plot(ot, ov, color="k", lw=1.0, label=observed_label)
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.set_xlim(start, years[-1])
    ax.set_xlabel("year")
    rel = "" if baseline is None else f" relative to {baseline[0]}-{baseline[1]}"
    ax.set_ylabel(f"{output}{rel}")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
