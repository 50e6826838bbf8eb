"""Observations to calibrate against: ``Target`` with pandas and scmdata readers."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ._ext import native

__all__ = ["Target"]


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
    ) -> "Target":
        """Build a target from a pandas DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per time.
        time_col : str, optional
            Column with the times. Default ``None`` uses the index.
        variables : dict, optional
            ``{target variable (model output name): column}``. Default: every
            column except the time and uncertainty columns, under its own name.
        uncertainty_col : str or dict, optional
            Column of 1-σ uncertainties (one column for all variables, or
            ``{variable: column}``).
        relative_error : float, optional
            σ = ``relative_error · |value|`` where no uncertainty column is given.
            Exactly one of ``uncertainty_col`` and ``relative_error`` is needed.
        reference_period : (float, float), optional
            Compare anomalies relative to the mean over this period (default: none).

        Returns
        -------
        Target
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
            times = df.index.to_numpy(dtype=float)
        else:
            if time_col not in df.columns:
                raise ValueError(f"from_dataframe: no column '{time_col}'; the columns are {list(df.columns)}")
            times = df[time_col].to_numpy(dtype=float)
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
                if not relative_error > 0:
                    raise ValueError(f"from_dataframe: relative_error must be > 0, got {relative_error}")
                sigma = relative_error * np.abs(values)
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
        relative_error: float = 0.1,
        uncertainty_variable_suffix: str = "|sigma",
    ) -> "Target":
        """Build a target from an ``scmdata.ScmRun`` (one timeseries per variable).

        Parameters
        ----------
        run : scmdata.ScmRun
            Observations; the ``variable`` metadata names the target variables.
            Times are taken as decimal years.
        reference_period : (float, float), optional
            Anomaly period (default: none).
        relative_error : float, default 0.1
            σ = ``relative_error · |value|`` for variables without an uncertainty series.
        uncertainty_variable_suffix : str, default "|sigma"
            A variable ``"X|sigma"`` holds the 1-σ uncertainties of ``"X"``.

        Returns
        -------
        Target
        """
        try:
            import scmdata  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "Target.from_scmdata needs the optional package scmdata: "
                "pip install 'climcal[scmdata]' (or pip install scmdata)"
            ) from exc
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
            else:
                sigma = relative_error * np.abs(values)
            keep = ~np.isnan(values)
            target.add_variable(var, times[keep], values[keep], sigma[keep])
        if reference_period is not None:
            target.with_reference_period(*reference_period)
        return target
