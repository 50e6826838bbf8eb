"""``Chain``: stored samples of an ensemble run, with diagnostics and conversions.

The arrays follow emcee's layout: ``samples`` is ``(rows, walkers, ndim)`` and
``log_prob`` is ``(rows, walkers)``. Chains from a run in this process are views
into the engine's buffers (no copy, read-only); chains from ``climcal.load`` are
plain numpy arrays read with h5py.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

__all__ = ["Chain", "AutocorrError"]


class AutocorrError(Exception):
    """The chain is too short for a reliable autocorrelation time.

    Attributes
    ----------
    tau : dict
        The estimate anyway, by parameter name.
    """

    def __init__(self, message: str, tau: dict[str, float]):
        super().__init__(message)
        self.tau = tau


def _lib():
    from ._ext import native

    return native()


class Chain:
    """Samples of an ensemble run.

    Parameters
    ----------
    samples : array (rows, walkers, ndim)
        Physical parameter values.
    log_prob : array (rows, walkers)
    names : list of str
        Parameter names (default ``p0, p1, ...``).
    accepted : array (walkers,), optional
        Accepted proposals per walker over ``n_steps`` steps.
    n_steps : int, optional
        Steps taken (default ``rows · thin``).
    thin : int, default 1
    blobs : array (rows, walkers, n_blobs), optional
        Model values at the observation times.
    blob_layout : list of (str, array), optional
        ``[(variable, observation times), ...]`` describing the blob columns.
    derived_quantities : list of (str, str, str), optional
        ``[(name, unit, description), ...]`` of the model's derived quantities
        (ECS, TCR, ...), stored as the last columns of ``blobs``.
    failures : int, default 0
    path : str, optional
        The chain file this came from.
    metadata : dict, optional
        Anything else (seed, priors, config text, ...).
    """

    def __init__(
        self,
        samples,
        log_prob,
        names: Sequence[str] | None = None,
        accepted=None,
        n_steps: int | None = None,
        thin: int = 1,
        blobs=None,
        blob_layout=None,
        failures: int = 0,
        path: str | None = None,
        metadata: dict | None = None,
        derived_quantities=None,
    ) -> None:
        samples = np.asarray(samples)
        log_prob = np.asarray(log_prob)
        if samples.ndim != 3:
            raise ValueError(f"Chain: samples must be (rows, walkers, ndim), got shape {samples.shape}")
        if log_prob.shape != samples.shape[:2]:
            raise ValueError(f"Chain: log_prob has shape {log_prob.shape}, expected {samples.shape[:2]}")
        self.samples = samples
        self.log_prob = log_prob
        self.names = list(names) if names is not None else [f"p{i}" for i in range(samples.shape[2])]
        if len(self.names) != samples.shape[2]:
            raise ValueError(f"Chain: {len(self.names)} names for {samples.shape[2]} parameters")
        self.thin = int(thin)
        self.n_steps = int(n_steps) if n_steps is not None else samples.shape[0] * self.thin
        self.accepted = None if accepted is None else np.asarray(accepted)
        self.blobs = None if blobs is None or np.size(blobs) == 0 else np.asarray(blobs)
        self.blob_layout = [(str(n), np.asarray(t, dtype=float)) for n, t in (blob_layout or [])]
        self.derived_quantities = [tuple(str(v) for v in q) for q in (derived_quantities or [])]
        nd = len(self.derived_quantities)
        if nd and (self.blobs is None or self.blobs.shape[-1] < nd):
            raise ValueError(f"Chain: {nd} derived quantities but the blobs have {0 if self.blobs is None else self.blobs.shape[-1]} columns")
        self.failures = int(failures)
        self.path = path
        self.metadata = dict(metadata or {})
        self._native = None

    @classmethod
    def _from_native(cls, nat, path: str | None = None) -> "Chain":
        c = cls(
            nat.samples,
            nat.log_prob,
            names=nat.names,
            accepted=nat.accepted,
            n_steps=nat.n_steps,
            thin=nat.thin,
            blobs=nat.blobs,
            blob_layout=nat.blob_layout,
            failures=nat.failures,
            path=path,
            derived_quantities=getattr(nat, "derived_quantities", None),
        )
        c._native = nat  # keeps the buffers alive (the arrays are views into it)
        wall, evals = nat.run_timing
        c.metadata.update(wall_seconds=wall, n_evals=evals)
        return c

    @classmethod
    def concatenate(cls, chains: Sequence["Chain"]) -> "Chain":
        """Join consecutive runs of one sampler (rows appended in order)."""
        if not chains:
            raise ValueError("Chain.concatenate: no chains")
        last = chains[-1]
        return cls(
            np.concatenate([c.samples for c in chains]),
            np.concatenate([c.log_prob for c in chains]),
            names=last.names,
            accepted=last.accepted,
            n_steps=last.n_steps,
            thin=last.thin,
            blobs=None if last.blobs is None else np.concatenate([c.blobs for c in chains]),
            blob_layout=last.blob_layout,
            failures=last.failures,
            path=last.path,
            metadata=last.metadata,
            derived_quantities=last.derived_quantities,
        )

    # -- shape ----------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Stored rows."""
        return self.samples.shape[0]

    @property
    def n_walkers(self) -> int:
        """Number of walkers."""
        return self.samples.shape[1]

    @property
    def ndim(self) -> int:
        """Number of parameters."""
        return self.samples.shape[2]

    @property
    def steps(self) -> np.ndarray:
        """The step number of each stored row (rows are stored every ``thin`` steps,
        counted from the start of the run, resumed runs included)."""
        last = (self.n_steps // self.thin) * self.thin
        return last - self.thin * np.arange(self.n_rows - 1, -1, -1, dtype=np.int64)

    def _select(self, discard: int = 0, thin: int = 1) -> np.ndarray:
        """Indices of the stored rows kept by ``discard`` and ``thin``, both in steps:
        the rows after step ``discard`` whose step is a multiple of ``thin``."""
        for name, v, lo, what in (("discard", discard, 0, "non-negative"), ("thin", thin, 1, "positive")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be a {what} integer (steps), got {v!r}")
        if thin > 1 and thin % self.thin:
            raise ValueError(
                f"thin={thin} steps is not a multiple of the chain's stored thinning ({self.thin}): "
                f"the chain holds every {self.thin}th step; use a multiple of {self.thin}"
            )
        steps = self.steps
        keep = steps > discard
        if thin > 1:
            keep &= steps % thin == 0
        idx = np.flatnonzero(keep)
        if idx.size == 0 and self.n_rows > 0:
            last = int(steps[-1])
            raise ValueError(
                f"discard={discard} steps drops every stored row (the last row is step {last}; "
                f"discard and thin count steps, not rows); use a smaller discard"
            )
        return idx

    def _rows(self, discard: int, thin: int = 1):
        """A slice (no copy) of the kept rows."""
        idx = self._select(discard, thin)
        if idx.size == 0:
            return slice(0, 0)
        step = int(idx[1] - idx[0]) if idx.size > 1 else 1
        return slice(int(idx[0]), int(idx[-1]) + 1, step)

    def get_chain(self, discard: int = 0, thin: int = 1, flat: bool = False) -> np.ndarray:
        """Samples as emcee's ``get_chain``: ``(rows, walkers, ndim)`` or flat
        ``(rows·walkers, ndim)``, without the first ``discard`` steps and keeping
        the steps that are multiples of ``thin`` (both in steps, see ``steps``)."""
        x = self.samples[self._rows(discard, thin)]
        return x.reshape(-1, self.ndim) if flat else x

    def flat_samples(self, discard: int = 0, thin: int = 1) -> np.ndarray:
        """Samples after the first ``discard`` steps, as ``(rows·walkers, ndim)``."""
        return self.get_chain(discard=discard, thin=thin, flat=True)

    def get_log_prob(self, discard: int = 0, thin: int = 1, flat: bool = False) -> np.ndarray:
        """Log-probabilities as emcee's ``get_log_prob`` (``discard``, ``thin`` in steps)."""
        x = self.log_prob[self._rows(discard, thin)]
        return x.reshape(-1) if flat else x

    # -- acceptance -------------------------------------------------------------------
    @property
    def acceptance_fraction(self) -> np.ndarray:
        """Accepted fraction of proposals per walker."""
        if self.accepted is None:
            raise ValueError("this chain has no acceptance counts")
        return self.accepted / max(self.n_steps, 1)

    def mean_acceptance_rate(self) -> float:
        """Mean of ``acceptance_fraction`` (0.2-0.5 is typical of a healthy run)."""
        return float(np.mean(self.acceptance_fraction))

    # -- diagnostics (computed in Rust) -----------------------------------------------
    def _by_walker(self, discard: int) -> np.ndarray:
        # (walkers, rows, ndim): walkers as chains, as ArviZ expects
        return np.ascontiguousarray(np.moveaxis(self.samples[self._rows(discard)], 1, 0))

    def autocorr_time(self, discard: int = 0, c: float = 5.0, tol: float = 50.0, quiet: bool = False) -> dict[str, float]:
        """Integrated autocorrelation time per parameter, in steps (as emcee's
        ``get_autocorr_time``: the estimate on the stored rows times ``thin``).

        emcee's ``integrated_time``: FFT autocorrelation averaged over walkers,
        Sokal's automatic window with ``c`` (default 5).

        Parameters
        ----------
        discard : int, default 0
            Steps to drop first.
        c : float, default 5.0
        tol : float, default 50.0
            The chain must be longer than ``tol`` τ.
        quiet : bool, default False
            Warn instead of raising when the chain is too short. The same rule is
            part of ``is_converged`` only with ``use_tau=True``.

        Raises
        ------
        AutocorrError
            When the chain is shorter than ``tol`` τ (``quiet=False``); ``.tau``
            holds the estimate.
        """
        x = np.ascontiguousarray(self.samples[self._rows(discard)], dtype=float)
        tau, ok, msg = _lib().integrated_time(x, c, tol)
        out = {n: float(t) * self.thin for n, t in zip(self.names, tau)}
        if not ok:
            if self.thin > 1:
                msg += f" (τ in stored rows; the chain stores every {self.thin}th step)"
            msg += (
                "; is_converged() checks R-hat only, is_converged(use_tau=True) applies this rule too"
            )
            if quiet:
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            else:
                raise AutocorrError(msg, out)
        return out

    def r_hat(self, discard: int = 0) -> dict[str, float]:
        """Rank-normalised split R-hat per parameter, walkers as chains (equal to ArviZ ``rhat``)."""
        x = self._by_walker(discard)
        lib = _lib()
        return {n: float(lib.rhat(x[:, :, i])) for i, n in enumerate(self.names)}

    def ess(self, discard: int = 0) -> dict[str, float]:
        """Bulk effective sample size per parameter (equal to ArviZ ``ess(method="bulk")``)."""
        x = self._by_walker(discard)
        lib = _lib()
        return {n: float(lib.ess_bulk(x[:, :, i])) for i, n in enumerate(self.names)}

    def is_converged(self, discard: int = 0, r_hat_threshold: float = 1.1, use_tau: bool = False) -> bool:
        """True when every R-hat < ``r_hat_threshold`` (default 1.1) and, with
        ``use_tau``, the chain is longer than 50 τ for every parameter (emcee's rule).
        ``convergence_report`` says why not."""
        return not self.convergence_report(discard, r_hat_threshold, use_tau)

    def convergence_report(self, discard: int = 0, r_hat_threshold: float = 1.1, use_tau: bool = False) -> list[str]:
        """Reasons the chain has not converged (empty when it has)."""
        reasons = [
            f"R-hat of {n} is {r:.3f} (threshold {r_hat_threshold})"
            for n, r in self.r_hat(discard).items()
            if not r < r_hat_threshold
        ]
        if use_tau:
            n_kept = self._select(discard).size * self.thin
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                tau = self.autocorr_time(discard, quiet=True)
            for n, t in tau.items():
                if not n_kept > 50 * t:
                    reasons.append(f"{n}: {n_kept} steps is not > 50 tau = {50 * t:.0f} steps")
        return reasons

    def summary(self, discard: int = 0):
        """pandas DataFrame: mean, sd, 5/50/95% quantiles, R-hat and bulk ESS per parameter."""
        import pandas as pd

        flat = self.flat_samples(discard)
        q = np.percentile(flat, [5, 50, 95], axis=0)
        rh, es = self.r_hat(discard), self.ess(discard)
        return pd.DataFrame(
            {
                "mean": flat.mean(axis=0),
                "sd": flat.std(axis=0, ddof=1),
                "q05": q[0],
                "q50": q[1],
                "q95": q[2],
                "r_hat": [rh[n] for n in self.names],
                "ess_bulk": [es[n] for n in self.names],
            },
            index=pd.Index(self.names, name="parameter"),
        )

    # -- conversions ------------------------------------------------------------------
    def to_dataframe(self, discard: int = 0, thin: int = 1):
        """pandas DataFrame, one row per (step, walker): ``step``, ``walker``, the
        parameters and ``log_prob``. ``step`` is the step the row was stored at
        (``steps``); ``discard`` and ``thin`` count steps."""
        import pandas as pd

        sel = self._rows(discard, thin)
        rows = self.samples[sel]
        lp = self.log_prob[sel]
        n, w, _ = rows.shape
        step = np.repeat(self.steps[sel], w)
        walker = np.tile(np.arange(w), n)
        data = {"step": step, "walker": walker}
        flat = rows.reshape(-1, self.ndim)
        for i, name in enumerate(self.names):
            data[name] = flat[:, i]
        data["log_prob"] = lp.reshape(-1)
        return pd.DataFrame(data)

    # -- derived quantities -------------------------------------------------------------
    @property
    def derived_names(self) -> list[str]:
        """Names of the derived quantities (empty when the model declares none)."""
        return [q[0] for q in self.derived_quantities]

    def get_derived(self, discard: int = 0, thin: int = 1, flat: bool = False) -> np.ndarray:
        """Derived quantities as ``(rows, walkers, n_derived)``, or flat ``(rows·walkers, n_derived)``;
        ``discard`` and ``thin`` count steps, as in ``get_chain``."""
        nd = len(self.derived_quantities)
        if nd == 0:
            raise ValueError("this chain has no derived quantities (the model declares none, or [output] derived = false)")
        x = self.blobs[self._rows(discard, thin)][:, :, -nd:]
        return x.reshape(-1, nd) if flat else x

    def derived(self, discard: int = 0, thin: int = 1):
        """Derived quantities (ECS, TCR, ...) as a pandas DataFrame, one row per
        (step, walker) like ``to_dataframe``; ``df.attrs["units"]`` maps names to units.

        Parameters
        ----------
        discard : int, default 0
            Steps to drop as burn-in (as ``get_chain``).
        thin : int, default 1
            Keep the steps that are multiples of ``thin``.
        """
        import pandas as pd

        x = self.get_derived(discard, thin)
        n, w, _ = x.shape
        data = {"step": np.repeat(self.steps[self._rows(discard, thin)], w), "walker": np.tile(np.arange(w), n)}
        for i, name in enumerate(self.derived_names):
            data[name] = x[:, :, i].reshape(-1)
        df = pd.DataFrame(data)
        df.attrs["units"] = {q[0]: q[1] for q in self.derived_quantities}
        return df

    def to_arviz(self, discard: int = 0):
        """ArviZ ``InferenceData`` with walkers as chains (``posterior`` and
        ``sample_stats.lp``); the ``draw`` coordinate is the step (``discard`` in steps);
        derived quantities (ECS, TCR, ...) are posterior variables beside the parameters."""
        try:
            import arviz as az
        except ImportError as exc:
            raise ImportError("Chain.to_arviz needs arviz: pip install 'climcal[arviz]'") from exc
        sel = self._rows(discard)
        x = self.samples[sel]
        lp = self.log_prob[sel]
        posterior = {n: np.asarray(x[:, :, i]).T for i, n in enumerate(self.names)}
        if self.derived_quantities:
            d = self.get_derived(discard)
            posterior.update({n: np.asarray(d[:, :, i]).T for i, n in enumerate(self.derived_names)})
        coords = {"chain": np.arange(self.n_walkers), "draw": self.steps[sel]}
        return az.from_dict(posterior=posterior, sample_stats={"lp": np.asarray(lp).T}, coords=coords)

    # -- projections ------------------------------------------------------------------
    def project(self, scenario="ssp245", draws: int | None = 1000, discard: int = 0, end: int = 2100, blend: int = 10, threads: int | None = None):
        """Run posterior draws under scenario forcing, as ``climcal project``.

        The model is rebuilt from the run file stored in the chain file (so the
        chain must come from ``climcal run`` or ``climcal ensemble``), its history
        kept, and the scenario's forcing joined after the calibration's last forcing
        year, with the calibration's forcing scales (docs/projections.md).

        Parameters
        ----------
        scenario : str or list of str, default "ssp245"
            Built-in AR6 SSPs ``ssp119``, ``ssp126``, ``ssp245``, ``ssp370``,
            ``ssp585``, or ``"NAME=FILE.csv"`` (ERF by component).
        draws : int or None, default 1000
            Draws thinned evenly from the samples after ``discard``; None for all.
        discard : int, default 0
            Steps to drop as burn-in (as ``get_chain``).
        end : int, default 2100
            Last year.
        blend : int, default 10
            Years over which the forcing difference at the join fades out (0: abrupt).
        threads : int, optional
            Threads (default: all cores).

        Returns
        -------
        Projections
            ``.years``, ``.series[scenario][output]`` arrays ``(draws, years)``,
            ``.change(scenario)`` (warming 2081-2100 vs 1850-1900 per draw),
            ``.quantiles``, ``.summary()``; ``climcal.plot.projection`` plots it.
        """
        from .projection import project_chain

        return project_chain(self, scenario, draws=draws, discard=discard, end=end, blend=blend, threads=threads)

    @property
    def plot(self):
        """Plots: ``trace``, ``corner``, ``autocorr``, ``acceptance``, ``posterior_predictive``."""
        from .plot import ChainPlot

        return ChainPlot(self)

    def __repr__(self) -> str:
        src = f", path={self.path!r}" if self.path else ""
        return f"Chain(rows={self.n_rows}, walkers={self.n_walkers}, ndim={self.ndim}, names={self.names}{src})"
