"""``Projections``: posterior draws run under scenario forcing.

Made by ``Chain.project`` (the model is rebuilt in Rust from the run file stored in
the chain file and run on a thread pool) or read by ``load_projection`` from a file
that ``climcal project`` wrote (h5py only). Series are numpy arrays
``(draws, years)`` per scenario and model output; ``years`` is the common axis.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

__all__ = ["Projections", "load_projection", "evenly_thinned"]

BASELINE = (1850, 1900)
LATE_CENTURY = (2081, 2100)


def evenly_thinned(available: int, n: int | None) -> np.ndarray:
    """``n`` of ``available`` indices, evenly spaced from 0 (``i * available // n``),
    as ``climcal project --draws N``; all of them when ``n`` is None or too large."""
    if n is None or n >= available:
        return np.arange(available)
    return (np.arange(n, dtype=np.int64) * available) // n


class Projections:
    """Per-draw series of model outputs under one or more scenarios.

    Attributes
    ----------
    years : ndarray (n_years,)
    outputs : list of str
        Model outputs (``"Surface Temperature"``, ``"Ocean Heat Content"``, ...).
    scenarios : list of str
    series : dict
        ``series[scenario][output]`` is an array ``(n_draws, n_years)``; NaN for
        failed draws.
    failed : dict
        ``failed[scenario]``: bool array ``(n_draws,)``.
    parameters : ndarray (n_draws, n_params)
        The draws (physical values), names in ``param_names``.
    n_history : int
        Leading years that are the calibration's own forcing (the historical run).
    info : dict
        Per scenario: label, source and the join (``join_offset`` total, aerosol,
        natural, other in W m-2; ``join_step``, ``join_step_unblended``).
    """

    def __init__(self, years, outputs, series, failed, parameters, param_names, n_history, info=None, draw_index=None):
        self.years = np.asarray(years, dtype=float)
        self.outputs = list(outputs)
        self.series = series
        self.failed = failed
        self.scenarios = list(series)
        self.parameters = np.asarray(parameters)
        self.param_names = list(param_names)
        self.n_history = int(n_history)
        self.info = dict(info or {})
        self.draw_index = None if draw_index is None else np.asarray(draw_index)

    @property
    def n_draws(self) -> int:
        return self.parameters.shape[0]

    def _get(self, scenario: str, output: str) -> np.ndarray:
        if scenario not in self.series:
            raise ValueError(f"no scenario {scenario!r}; these projections have {self.scenarios}")
        if output not in self.series[scenario]:
            raise ValueError(f"no output {output!r}; the outputs are {self.outputs}")
        return self.series[scenario][output]

    def _period(self, p) -> np.ndarray:
        a, b = p
        sel = (self.years >= a) & (self.years <= b)
        if self.years.size == 0 or self.years[0] > a or self.years[-1] < b:
            raise ValueError(f"the projection ({self.years[0]:g}-{self.years[-1]:g}) does not cover {a}-{b}")
        return sel

    def relative(self, scenario: str, output: str = "Surface Temperature", baseline=BASELINE) -> np.ndarray:
        """``(n_draws, n_years)``: the series minus each draw's mean over ``baseline``
        (default 1850-1900; None for the raw series)."""
        x = self._get(scenario, output)
        if baseline is None:
            return x
        return x - x[:, self._period(baseline)].mean(axis=1, keepdims=True)

    def change(self, scenario: str, period=LATE_CENTURY, baseline=BASELINE, output: str = "Surface Temperature") -> np.ndarray:
        """Per draw: mean over ``period`` (default 2081-2100) minus the mean over
        ``baseline`` (default 1850-1900), as ``climcal project`` prints it."""
        x = self._get(scenario, output)
        return x[:, self._period(period)].mean(axis=1) - x[:, self._period(baseline)].mean(axis=1)

    def quantiles(self, scenario: str, q: Sequence[float] = (5, 50, 95), output: str = "Surface Temperature", baseline=BASELINE) -> np.ndarray:
        """``(len(q), n_years)`` percentiles over the draws (failed draws ignored)."""
        return np.nanpercentile(self.relative(scenario, output, baseline), q, axis=0)

    def summary(self, period=LATE_CENTURY, baseline=BASELINE, output: str = "Surface Temperature"):
        """pandas DataFrame per scenario: 5/50/95 % of ``change(period, baseline)``
        and of the year ``period[1]``."""
        import pandas as pd

        rows = {}
        for s in self.scenarios:
            w = self.change(s, period, baseline, output)
            y = self.change(s, (period[1], period[1]), baseline, output)
            qw = np.nanpercentile(w, [5, 50, 95])
            qy = np.nanpercentile(y, [5, 50, 95])
            rows[s] = {
                "q05": qw[0], "q50": qw[1], "q95": qw[2],
                f"q05_{period[1]}": qy[0], f"q50_{period[1]}": qy[1], f"q95_{period[1]}": qy[2],
                "failed": int(np.count_nonzero(self.failed[s])),
            }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("scenario")

    def to_dataframe(self, scenario: str, output: str = "Surface Temperature", baseline=None):
        """pandas DataFrame, one column per year and one row per draw."""
        import pandas as pd

        return pd.DataFrame(self.relative(scenario, output, baseline), columns=self.years.astype(int))

    def __repr__(self) -> str:
        return (
            f"Projections(scenarios={self.scenarios}, draws={self.n_draws}, "
            f"years={self.years[0]:g}-{self.years[-1]:g}, outputs={self.outputs})"
        )


def _from_native(d: dict, parameters, param_names, draw_index) -> Projections:
    series, failed, info = {}, {}, {}
    outputs = list(d["outputs"])
    for name, s in d["scenarios"].items():
        v = np.asarray(s["values"])
        series[name] = {o: v[:, k, :] for k, o in enumerate(outputs)}
        failed[name] = np.asarray(s["failed"], dtype=bool)
        info[name] = {k: s[k] for k in ("label", "source", "join_offset", "join_step", "join_step_unblended")}
    return Projections(d["years"], outputs, series, failed, parameters, param_names, d["n_history"], info, draw_index)


def project_chain(chain, scenario, draws: int | None = 1000, discard: int = 0, end: int = 2100, blend: int = 10, threads: int | None = None) -> Projections:
    """The implementation of ``Chain.project`` (see there)."""
    from ._ext import native

    cfg = chain.metadata.get("config_toml", "")
    if not cfg:
        raise ValueError(
            "this chain holds no run file (config_toml): it was not written by `climcal run` or "
            "`climcal ensemble`, so the model cannot be rebuilt; project from the command line or a run file"
        )
    scenarios = [scenario] if isinstance(scenario, str) else list(scenario)
    if not scenarios:
        raise ValueError("give at least one scenario (e.g. 'ssp245')")
    if draws is not None and (isinstance(draws, bool) or int(draws) < 1):
        raise ValueError(f"draws must be a positive integer or None (all), got {draws!r}")
    flat = chain.flat_samples(discard=discard)
    idx = evenly_thinned(flat.shape[0], None if draws is None else int(draws))
    x = np.ascontiguousarray(flat[idx], dtype=float)
    d = native().project_draws(cfg, chain.metadata.get("config_dir", "."), x, scenarios, float(end), int(blend), threads)
    return _from_native(d, x, chain.names, idx)


def _text(v) -> str:
    return v.decode() if isinstance(v, (bytes, np.bytes_)) else str(v)


def load_projection(path: str | os.PathLike) -> Projections:
    """Read a file written by ``climcal project`` (h5py only)."""
    import h5py

    path = os.fspath(path)
    with h5py.File(path, "r") as f:
        if "projection" not in f:
            raise ValueError(f"{path} is not a projection file: it has no 'projection' group (groups: {list(f.keys())})")
        g = f["projection"]
        names = [_text(s) for s in g["scenario_names"][()]]
        outputs = [_text(s) for s in g["output_names"][()]]
        series, failed, info = {}, {}, {}
        for s in names:
            sg = g[s]
            series[s] = {o: sg[o][()] for o in outputs}
            failed[s] = sg["failed"][()].astype(bool)
            info[s] = {k: (_text(v) if isinstance(v, (bytes, str, np.bytes_)) else np.asarray(v).tolist()) for k, v in sg.attrs.items()}
        return Projections(
            g["years"][()],
            outputs,
            series,
            failed,
            g["parameters"][()],
            [_text(s) for s in g["param_names"][()]],
            int(g.attrs["n_history"]),
            info,
            g["draw_index"][()],
        )
