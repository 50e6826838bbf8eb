"""Models: built-in Rust models by name, or Python callables."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._ext import native

__all__ = ["ModelRunner"]

_TIME_KEYS = ("time", "times", "year", "years")


def _split_output(out: Any, outputs: Sequence[str], have_times: bool):
    """``(times or None, mapping name -> values)`` from what a Python model returned."""
    times = None
    if isinstance(out, tuple) and len(out) == 2:
        times, out = out
    if hasattr(out, "columns") and hasattr(out, "index"):  # pandas DataFrame
        if times is None:
            times = out.index.to_numpy(dtype=float)
        return times, out
    if isinstance(out, Mapping):
        if times is None:
            for k in _TIME_KEYS:
                if k in out:
                    times = out[k]
                    break
        return times, out
    if len(outputs) == 1:
        return times, {outputs[0]: out}
    raise TypeError(
        "a Python model must return a dict {variable: values} (with 'time' or times= given to "
        f"ModelRunner), a (times, dict) tuple or a pandas DataFrame indexed by time; got {type(out).__name__}"
    )


def _pick(values: Any, outputs: Sequence[str]) -> list:
    try:
        return [values[name] for name in outputs]
    except KeyError as exc:
        keys = list(values.keys()) if hasattr(values, "keys") else list(getattr(values, "columns", []))
        raise ValueError(f"the model returned no series {exc.args[0]!r}; it returned {keys}") from None


class ModelRunner:
    """A model that maps parameters to named time series.

    Three kinds:

    * ``ModelRunner("one_box", times=..., forcing=...)``: a built-in Rust model by
      name with its options (the fast path: no Python in the loop, evaluated in
      parallel on a rayon pool). ``ModelRunner.builtin_names()`` lists them.
    * ``ModelRunner(model_factory=f, output_variables=["tas"])``: a Python model.
      ``f`` is called with a ``{parameter: value}`` dict and returns the named
      series: a dict ``{variable: values}`` (times from ``times=`` or a ``"time"``
      key), a ``(times, dict)`` tuple or a DataFrame indexed by time. The GIL is
      held only while ``f`` runs.
    * ``ModelRunner(model_factory=f, output_variables=[...], vectorized=True)``:
      ``f`` gets a whole batch as a 2-D array ``(n, n_params)`` (columns in
      ``parameters`` order) and returns ``{variable: array (n, n_times)}``: one
      Python call per half-ensemble.

    Parameters
    ----------
    model : str, optional
        Name of a built-in model.
    options : dict, optional
        Options of the built-in model (keyword arguments are merged into it).
    model_factory : callable, optional
        The Python model.
    output_variables : list of str
        Series the Python model returns (required with ``model_factory``).
    parameters : list of str, optional
        Parameter names the Python model takes, in order. Default: those of the
        ``ParameterSet`` it is used with.
    times : array-like, optional
        Time axis of the Python model's output when it does not return one.
    vectorized : bool, default False
        ``model_factory`` takes a batch (see above).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        model_factory: Callable | None = None,
        output_variables: Sequence[str] | None = None,
        parameters: Sequence[str] | None = None,
        times: Any = None,
        vectorized: bool = False,
        **model_options: Any,
    ) -> None:
        lib = native()
        if model is not None and not isinstance(model, str):
            if callable(model) and model_factory is None:
                model, model_factory = None, model
            else:
                raise TypeError(
                    f"ModelRunner(model=...): expected the name of a built-in model (one of {lib.ModelRunner.builtin_names()}), "
                    f"got {type(model).__name__}; for a Python model use ModelRunner(model_factory=callable, output_variables=[...])"
                )
        if (model is None) == (model_factory is None):
            raise TypeError(
                "ModelRunner needs exactly one of model='name' (built-in Rust model, one of "
                f"{lib.ModelRunner.builtin_names()}) or model_factory=callable (a Python model)"
            )
        self._native = None
        self._vectorized = bool(vectorized)
        if model is not None:
            opts = dict(options or {})
            opts.update(model_options)
            if times is not None:
                opts["times"] = times
            self._native = lib.ModelRunner.builtin(model, opts)
            self.name = model
            return
        if model_options:
            raise TypeError(f"unexpected keyword arguments for a Python model: {sorted(model_options)}")
        if not callable(model_factory):
            raise TypeError(f"model_factory must be callable, got {type(model_factory).__name__}")
        if output_variables is None or isinstance(output_variables, str) or len(output_variables) == 0:
            raise TypeError("a Python model needs output_variables=[...]: the names of the series it returns, e.g. ['tas']")
        self.name = getattr(model_factory, "__name__", "python")
        self._factory = model_factory
        self._outputs = [str(v) for v in output_variables]
        self._times = None if times is None else np.asarray(times, dtype=float)
        self._parameters = None if parameters is None else [str(p) for p in parameters]
        if self._parameters is not None:
            self._native = self._build(self._parameters)

    # -- native binding -------------------------------------------------------------
    def _build(self, names: Sequence[str]):
        lib = native()
        names = list(names)
        outputs = self._outputs
        f = self._factory
        have_times = self._times is not None
        if self._vectorized:
            def adapter(theta: np.ndarray):
                t, vals = _split_output(f(theta), outputs, have_times)
                return (None if t is None else t), [np.asarray(v, dtype=float) for v in _pick(vals, outputs)]
        else:
            def adapter(theta: tuple):
                t, vals = _split_output(f(dict(zip(names, theta))), outputs, have_times)
                return (None if t is None else t), list(_pick(vals, outputs))
        return lib.ModelRunner.from_callable(adapter, names, outputs, self._times, self._vectorized)

    def _native_for(self, parameter_names: Sequence[str]):
        """The native runner, bound to ``parameter_names`` for Python models without ``parameters=``."""
        if self._native is None:
            return self._build(parameter_names)
        return self._native

    # -- public ---------------------------------------------------------------------
    @staticmethod
    def builtin_names() -> list[str]:
        """Names of the built-in Rust models."""
        return list(native().ModelRunner.builtin_names())

    @property
    def is_python(self) -> bool:
        """True for Python models."""
        return self._native is None or self._native.is_python

    @property
    def parameters(self) -> list[str] | None:
        """Parameter names, in order (``None`` for a Python model not yet bound to parameters)."""
        return None if self._native is None else list(self._native.parameters)

    @property
    def output_variables(self) -> list[str]:
        """Names of the series the model returns."""
        return list(self._native.outputs) if self._native is not None else list(self._outputs)

    def run(self, params: Mapping[str, float] | Sequence[float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run once.

        Parameters
        ----------
        params : dict or sequence
            ``{name: value}``, or values in ``parameters`` order.

        Returns
        -------
        times : numpy.ndarray
        outputs : dict of numpy.ndarray
        """
        if isinstance(params, Mapping):
            nat = self._native_for(list(params.keys()))
            try:
                theta = [float(params[n]) for n in nat.parameters]
            except KeyError as exc:
                raise ValueError(f"ModelRunner.run: no value for parameter {exc.args[0]!r}; the model takes {nat.parameters}") from None
        else:
            if self._native is None:
                raise ValueError("ModelRunner.run: pass a dict {parameter: value} (this Python model has no parameters= list)")
            nat = self._native
            theta = params
        return nat.run(np.asarray(theta, dtype=float))

    def __repr__(self) -> str:
        kind = "python, vectorized" if self._vectorized else ("python" if self.is_python else "built-in")
        return f"ModelRunner({self.name!r}; {kind}; outputs {self.output_variables})"
