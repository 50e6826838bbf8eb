"""Models: built-in Rust models by name, or Python callables."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._ext import native

__all__ = ["ModelRunner"]

# One reading of a Python model's return value, in-process and in worker processes.
from ._worker import _pick, _split_output  # noqa: E402


def _worker_target(f: Callable) -> dict:
    """Where a worker process finds ``f``: its module (importable by name on this
    ``sys.path``) and file; a function in the main script is imported from the
    script file as ``__mp_main__``, as multiprocessing's spawn does."""
    qual = getattr(f, "__qualname__", "")
    modname = getattr(f, "__module__", None)
    if not qual or "<" in qual or modname is None:
        raise TypeError(
            f"processes= needs a module-level function that a fresh interpreter can import (as multiprocessing's spawn); "
            f"{getattr(f, '__name__', f)!r} is a lambda, a nested function or a callable object. Define it at the top level of a "
            "module or script (guard the script's own run with if __name__ == '__main__':)"
        )
    mod = sys.modules.get(modname)
    file = getattr(mod, "__file__", None)
    if modname == "__main__":
        if file is None:
            raise TypeError(
                "processes= needs the model in a file: a function typed into an interactive session or a notebook cell cannot be "
                "imported by worker processes; put it in a .py module and import it"
            )
        modname = None
    sys_path = [os.getcwd() if p == "" else p for p in sys.path]
    return {"module": modname, "file": None if file is None else os.path.abspath(file), "function": qual, "sys_path": sys_path}


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
    * ``ModelRunner(model_factory=f, output_variables=[...], processes=4)``: the
      same Python model evaluated in 4 worker processes, each with its own
      interpreter (threads cannot help under the GIL). ``f`` must be a
      module-level function (a worker imports its module, or the script file
      without running its ``if __name__ == "__main__":`` block, as
      multiprocessing's spawn does). The chain is the same bit for bit as
      in-process and for any number of processes; this is what ``[model] name =
      "python"`` does in a run file.

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
    processes : int, optional
        Evaluate the Python model in this many worker processes (default: in this
        process). The sampler then evaluates that many points at once; ``threads=``
        does not apply.
    timeout : float, optional
        With ``processes``: a call that takes longer (seconds) is a failed
        evaluation (−∞ for that walker, counted) and its worker is killed and
        replaced (default: no limit). An in-process model cannot be stopped, so
        ``timeout`` needs ``processes``.
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
        processes: int | None = None,
        timeout: float | None = None,
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
        if processes is not None and (isinstance(processes, bool) or not isinstance(processes, int) or processes < 1):
            raise ValueError(f"ModelRunner: processes must be an integer >= 1, got {processes!r}")
        if timeout is not None and processes is None:
            raise ValueError("ModelRunner: timeout= needs processes=N (an in-process Python model cannot be stopped)")
        if model is not None and processes is not None:
            raise TypeError("ModelRunner: processes= is for Python models; built-in models run on threads (threads= of the sampler)")
        self._processes = processes
        self._timeout = timeout
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
        self._where = None if processes is None else _worker_target(model_factory)
        if self._parameters is not None:
            self._native = self._build(self._parameters)

    # -- native binding -------------------------------------------------------------
    def _build(self, names: Sequence[str]):
        lib = native()
        names = list(names)
        outputs = self._outputs
        f = self._factory
        have_times = self._times is not None
        if self._processes is not None:
            w = self._where
            return lib.ModelRunner.from_worker_processes(
                sys.executable, w["module"], w["file"], w["function"], names, outputs, self._times, self._vectorized,
                self._processes, self._timeout, w["sys_path"],
            )
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
            if self._processes is None:
                return self._build(parameter_names)
            # Worker processes are started once per parameter order, not per sampler.
            key = tuple(parameter_names)
            cache = self.__dict__.setdefault("_by_names", {})
            if key not in cache:
                cache[key] = self._build(parameter_names)
            return cache[key]
        return self._native

    # -- RSCM -------------------------------------------------------------------------
    @classmethod
    def from_rscm(
        cls,
        model: Any,
        *,
        parameters: Mapping[str, Any],
        output_variables: Sequence[str] | Mapping[str, str],
    ) -> "ModelRunner":
        """An `RSCM <https://github.com/lewisjared/rscm>`_ model, run in-process in Rust.

        The same runner as ``[model] name = "rscm"`` in a run file: the model text is
        parsed once; per evaluation the parsed tree is copied, the parameters are
        written at paths checked here, and the model is built and run (no Python in
        the loop, so ``threads=`` of the sampler applies).

        Parameters
        ----------
        model : str, os.PathLike or object with ``to_toml()``
            The model as RSCM serializes it: TOML or JSON text, a path to such a
            file, or an RSCM model object (its ``to_toml()`` is called). Save it
            before running it.
        parameters : dict
            ``{climcal name: where}``, in the order of the parameters; ``where`` is
            ``"Component.parameter"`` (dotted below for nested keys, e.g.
            ``"CarbonCycle.solver_options.step_size"``), ``("Component",
            "parameter")``, ``("Component", "parameter", index)`` or ``{"component":
            ..., "parameter": ..., "index": ...}``; ``index`` picks the k-th component
            of a type (needed only where the model has several).
        output_variables : list of str or dict
            RSCM variable names, or ``{climcal name: RSCM variable}`` to give them
            shorter names for the ``Target``.

        A component type, parameter or variable the model lacks is a ``ValueError``
        naming it and listing what the model has. Needs climcal built with the cargo
        feature ``rscm`` (the wheels built by ``launch/test`` have it).
        """
        lib = native()
        make = getattr(lib, "rscm_runner", None)
        if make is None:
            raise RuntimeError(
                "ModelRunner.from_rscm: this climcal was built without RSCM support (cargo feature rscm); "
                "build the wheel with `maturin build --release --features rscm`"
            )
        text = _rscm_text(model)
        if not isinstance(parameters, Mapping) or len(parameters) == 0:
            raise TypeError(
                "ModelRunner.from_rscm: parameters must be a dict {name: 'Component.parameter'}, "
                "e.g. {'tau': 'CarbonCycle.tau'}"
            )
        params = [(str(name),) + _rscm_path(name, where) for name, where in parameters.items()]
        if isinstance(output_variables, Mapping):
            outs = [(str(k), str(v)) for k, v in output_variables.items()]
        elif isinstance(output_variables, str) or output_variables is None:
            raise TypeError("ModelRunner.from_rscm: output_variables must be a list of RSCM variable names (or a dict)")
        else:
            outs = [(str(v), str(v)) for v in output_variables]
        self = cls.__new__(cls)
        self._native = make(text, params, outs)
        self.name = "rscm"
        self._vectorized = False
        self._processes = None
        self._timeout = None
        return self

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
        if getattr(self, "_processes", None):
            kind += f", {self._processes} processes"
        return f"ModelRunner({self.name!r}; {kind}; outputs {self.output_variables})"


def _rscm_text(model: Any) -> str:
    """The TOML/JSON text of an RSCM model given as text, a path or an object with ``to_toml()``."""
    if hasattr(model, "to_toml") and callable(model.to_toml):
        text = model.to_toml()
    elif isinstance(model, os.PathLike):
        with open(model, encoding="utf-8") as f:
            text = f.read()
    elif isinstance(model, bytes):
        text = model.decode("utf-8")
    else:
        text = model
    if not isinstance(text, str):
        raise TypeError(
            "ModelRunner.from_rscm: model must be the TOML/JSON text of an RSCM model, a path to such a file, or an "
            f"object with to_toml(); got {type(model).__name__}"
        )
    return text


def _rscm_path(name: Any, where: Any) -> tuple:
    """``(component, parameter, index or None)`` from the forms ``from_rscm`` accepts."""
    if isinstance(where, str):
        comp, dot, param = where.partition(".")
        index = None
        if comp.endswith("]") and "[" in comp:
            comp, _, k = comp[:-1].partition("[")
            index = int(k)
        if dot and comp and param:
            return (comp, param, index)
    elif isinstance(where, Mapping):
        unknown = set(where) - {"component", "parameter", "index"}
        if not unknown and "component" in where and "parameter" in where:
            idx = where.get("index")
            return (str(where["component"]), str(where["parameter"]), None if idx is None else int(idx))
    elif isinstance(where, (tuple, list)) and len(where) in (2, 3):
        return (str(where[0]), str(where[1]), None if len(where) == 2 or where[2] is None else int(where[2]))
    raise ValueError(
        f"ModelRunner.from_rscm: parameter {name!r} -> {where!r}: expected 'Component.parameter', "
        "'Component[k].parameter', (component, parameter[, index]) or {'component': ..., 'parameter': ..., 'index': ...}"
    )
