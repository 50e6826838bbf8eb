"""Observations to calibrate against: ``Target`` with pandas and scmdata readers."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ._ext import native

__all__ = ["Target"]


def decimal_years(times) -> np.ndarray:
    """Times as decimal years: datetimes (numpy ``datetime64``, pandas Timestamps,
    a DatetimeIndex or PeriodIndex, Python ``datetime``) become
    ``year + (t - Jan 1) / (length of that year)``; numbers pass through."""
    import pandas as pd

    if isinstance(times, pd.PeriodIndex):
        times = times.to_timestamp()
    arr = np.asarray(times)
    is_dt = np.issubdtype(arr.dtype, np.datetime64) or isinstance(getattr(times, "dtype", None), pd.DatetimeTZDtype)
    if not is_dt and arr.dtype == object and arr.size and all(hasattr(x, "year") and hasattr(x, "month") for x in arr.ravel()):
        is_dt = True
    if not is_dt:
        return arr.astype(float)
    ts = pd.DatetimeIndex(pd.to_datetime(times))
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    start = pd.to_datetime(pd.DataFrame({"year": ts.year, "month": 1, "day": 1}))
    end = pd.to_datetime(pd.DataFrame({"year": ts.year + 1, "month": 1, "day": 1}))
    frac = (ts - pd.DatetimeIndex(start)) / (pd.DatetimeIndex(end) - pd.DatetimeIndex(start))
    return ts.year.to_numpy(dtype=float) + np.asarray(frac, dtype=float)


def relative_sigma(values: np.ndarray, relative_error: float, sigma_floor, what: str) -> np.ndarray:
    """σ = max(relative_error · |value|, sigma_floor): a relative error needs a floor,
    or zero and near-zero values (anomalies) would get σ ≈ 0."""
    if not (isinstance(relative_error, (int, float, np.floating)) and relative_error > 0 and np.isfinite(relative_error)):
        raise ValueError(f"{what}: relative_error must be a finite number > 0, got {relative_error!r}")
    if sigma_floor is None:
        raise ValueError(
            f"{what}: relative_error={relative_error} gives sigma = {relative_error} * |value|, which is 0 for a zero "
            "anomaly and tiny near zero; give sigma_floor= too (the smallest 1-sigma, in the data's units): "
            "sigma = max(relative_error * |value|, sigma_floor)"
        )
    if not (isinstance(sigma_floor, (int, float, np.floating)) and sigma_floor > 0 and np.isfinite(sigma_floor)):
        raise ValueError(f"{what}: sigma_floor must be > 0 (and finite), got {sigma_floor!r}")
    return np.maximum(relative_error * np.abs(values), float(sigma_floor))


class Target(native().Target):
    """Observations to calibrate against: named variables with times, values and
    1-σ uncertainties.

    Build it fluently with ``add_variable`` and ``with_reference_period``, or from a
    table with ``from_dataframe`` / ``from_scmdata``.

    Examples
    --------
    >>> import climcal
    >>> t = (climcal.Target()
    ...      .add_variable("tas", [1850, 1851, 1852], [0.0, 0.1, 0.05], [0.1, 0.1, 0.1])
    ...      .with_reference_period(1850, 1900))
    >>> t.variables
    ['tas']
    """

    @classmethod
    def from_dataframe(
        cls,
        df,
        time_col: str | None = None,
        variables: Mapping[str, str] | None = None,
        uncertainty_col: str | Mapping[str, str] | None = None,
        relative_error: float | None = None,
        reference_period: tuple[float, float] | None = None,
        sigma_floor: float | None = None,
    ) -> "Target":
        """Build a target from a pandas DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per time.
        time_col : str, optional
            Column with the times. Default ``None`` uses the index. Datetimes
            (a datetime column, a DatetimeIndex or PeriodIndex) become decimal
            years, ``year + (t − 1 Jan) / (length of the year)``. Observation times
            must equal the model's output times (see Notes).
        variables : dict, optional
            ``{target variable (model output name): column}``. Default: every
            column except the time and uncertainty columns, under its own name.
        uncertainty_col : str or dict, optional
            Column of 1-σ uncertainties (one column for all variables, or
            ``{variable: column}``).
        relative_error : float, optional
            σ = ``max(relative_error · |value|, sigma_floor)`` where no uncertainty
            column is given. Exactly one of ``uncertainty_col`` and
            ``relative_error`` is needed.
        reference_period : (float, float), optional
            Compare anomalies relative to the mean over this period (default: none).
        sigma_floor : float
            Required with ``relative_error``: the smallest σ (data units), so that
            zero and near-zero values (anomalies) keep a finite uncertainty.

        Returns
        -------
        Target

        Notes
        -----
        Alignment rule: the likelihood compares the model *at* the observation
        times, which must equal model output times (within 1e-9 relative); there
        is no interpolation or averaging. The samplers and ``PointEstimator``
        check this when they are built and name the variable, the uncovered times
        and the model's time range.
        """
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_dataframe: expected a pandas DataFrame, got {type(df).__name__}")
        if (uncertainty_col is None) == (relative_error is None):
            raise ValueError(
                "from_dataframe: give exactly one of uncertainty_col= (a column of 1-sigma values) "
                "or relative_error= (sigma = relative_error * |value|)"
            )
        if time_col is None:
            times = decimal_years(df.index)
        else:
            if time_col not in df.columns:
                raise ValueError(f"from_dataframe: no column '{time_col}'; the columns are {list(df.columns)}")
            times = decimal_years(df[time_col])
        if variables is None:
            skip = {time_col}
            if isinstance(uncertainty_col, str):
                skip.add(uncertainty_col)
            elif isinstance(uncertainty_col, Mapping):
                skip.update(uncertainty_col.values())
            variables = {c: c for c in df.columns if c not in skip}
        target = cls()
        for name, col in variables.items():
            if col not in df.columns:
                raise ValueError(f"from_dataframe: no column '{col}' for variable '{name}'; the columns are {list(df.columns)}")
            values = df[col].to_numpy(dtype=float)
            if relative_error is not None:
                sigma = relative_sigma(values, relative_error, sigma_floor, "from_dataframe")
            else:
                ucol = uncertainty_col[name] if isinstance(uncertainty_col, Mapping) else uncertainty_col
                if ucol not in df.columns:
                    raise ValueError(f"from_dataframe: no uncertainty column '{ucol}'; the columns are {list(df.columns)}")
                sigma = df[ucol].to_numpy(dtype=float)
            keep = ~np.isnan(values)
            target.add_variable(name, times[keep], values[keep], sigma[keep])
        if reference_period is not None:
            target.with_reference_period(*reference_period)
        return target

    @classmethod
    def from_scmdata(
        cls,
        run,
        reference_period: tuple[float, float] | None = None,
        relative_error: float | None = None,
        uncertainty_variable_suffix: str = "|sigma",
        sigma_floor: float | None = None,
    ) -> "Target":
        """Build a target from an ``scmdata.ScmRun`` (one timeseries per variable).

        Parameters
        ----------
        run : scmdata.ScmRun
            Observations; the ``variable`` metadata names the target variables.
            Times are taken as decimal years.
        reference_period : (float, float), optional
            Anomaly period (default: none).
        relative_error : float, optional
            σ = ``max(relative_error · |value|, sigma_floor)`` for variables
            without an uncertainty series. No default: a variable with neither is
            an error.
        uncertainty_variable_suffix : str, default "|sigma"
            A variable ``"X|sigma"`` holds the 1-σ uncertainties of ``"X"``.
        sigma_floor : float
            Required with ``relative_error`` (see ``from_dataframe``).

        Returns
        -------
        Target
        """
        if not hasattr(run, "timeseries"):
            try:
                import scmdata  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "Target.from_scmdata needs the optional package scmdata: "
                    "pip install 'climcal[scmdata]' (or pip install scmdata)"
                ) from exc
            raise TypeError(f"from_scmdata: expected an scmdata.ScmRun, got {type(run).__name__}")
        ts = run.timeseries()
        if "variable" not in ts.index.names:
            raise ValueError("from_scmdata: the run has no 'variable' metadata")
        cols = ts.columns
        times = np.array([c.year + (c.timetuple().tm_yday - 1) / 365.25 if hasattr(c, "year") else float(c) for c in cols])
        variables = list(dict.fromkeys(ts.index.get_level_values("variable")))
        target = cls()
        for var in variables:
            if var.endswith(uncertainty_variable_suffix):
                continue
            rows = ts[ts.index.get_level_values("variable") == var]
            if len(rows) != 1:
                raise ValueError(f"from_scmdata: variable '{var}' has {len(rows)} timeseries; filter the run to one per variable")
            values = rows.to_numpy(dtype=float)[0]
            sig_name = var + uncertainty_variable_suffix
            if sig_name in variables:
                sigma = ts[ts.index.get_level_values("variable") == sig_name].to_numpy(dtype=float)[0]
            elif relative_error is not None:
                sigma = relative_sigma(values, relative_error, sigma_floor, f"from_scmdata('{var}')")
            else:
                raise ValueError(
                    f"from_scmdata: variable '{var}' has no uncertainty: add a '{sig_name}' timeseries "
                    "(1-sigma values) or give relative_error= with sigma_floor="
                )
            keep = ~np.isnan(values)
            target.add_variable(var, times[keep], values[keep], sigma[keep])
        if reference_period is not None:
            target.with_reference_period(*reference_period)
        return target
