"""climcal's Python-model worker, and the rules for reading what a Python model returns.

Two uses of one file:

* ``climcal.ModelRunner`` imports ``_split_output`` and ``_pick`` from here, so a
  Python model's return value is read by the same code in-process and in a worker.
* The ``climcal`` binary (``[model] name = "python"``) and ``ModelRunner(...,
  processes=N)`` run this file as ``python -c <source>``: one long-lived
  interpreter per worker that imports the model once and then evaluates it for as
  long as the run lasts (no process start per evaluation). Only the standard
  library is needed (NumPy is used when present).

Protocol (stdin/stdout of the worker, little-endian):

1. climcal writes one JSON line: ``{"module" | "file", "function", "parameters",
   "outputs", "times", "vectorized", "sys_path", "module_name"}``; the worker
   answers one JSON line, ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.
2. Requests: ``u32 n`` then ``n × len(parameters)`` f64 (rows of physical values).
   Reply, per row: ``u8 0, u32 n_times, n_times f64 times, then n_times f64 per
   output`` or ``u8 1, u32 len, len bytes of UTF-8`` (the error, as
   ``"TypeError: message"``). End of input ends the worker.

The model's own prints go to stderr (fd 1 is moved there), so they cannot
corrupt the protocol. SIGINT is ignored: Ctrl-C stops the run in climcal, after
the step, not in the middle of an evaluation.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

_TIME_KEYS = ("time", "times", "year", "years")


def _split_output(out: Any, outputs: Sequence[str], have_times: bool = False):
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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _load(spec: dict):
    """The model function named by ``spec`` (a module on ``sys_path`` or a file)."""
    import importlib
    import importlib.util
    import os
    import sys

    for p in reversed(spec.get("sys_path") or []):
        if p not in sys.path:
            sys.path.insert(0, p)
    mod = None
    if spec.get("module"):
        try:
            mod = importlib.import_module(spec["module"])
        except ImportError:
            if not spec.get("file"):
                raise
    if mod is None:
        path = spec["file"]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no model file {path}")
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        # A script's `if __name__ == "__main__":` block does not run (as with
        # multiprocessing's spawn, which imports the main script as __mp_main__).
        name = spec.get("module_name") or "__mp_main__"
        s = importlib.util.spec_from_file_location(name, path)
        if s is None or s.loader is None:
            raise ImportError(f"cannot import {path} as Python")
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
    f = mod
    for part in spec["function"].split("."):
        if not hasattr(f, part):
            names = sorted(n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n, None)))
            raise AttributeError(f"{getattr(mod, '__name__', mod)} has no function {spec['function']!r}; it has {names}")
        f = getattr(f, part)
    if not callable(f):
        raise TypeError(f"{spec['function']!r} is a {type(f).__name__}, not a function")
    return f


def _floats(v: Any, what: str):
    """A flat sequence of float64 from values (NumPy when present)."""
    try:
        import numpy as np

        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"{what}: expected a 1-D array, got {a.ndim}-D")
        return a
    except ImportError:  # pragma: no cover - numpy is a dependency of climcal
        from array import array

        return array("d", (float(x) for x in v))


def _main() -> None:  # pragma: no cover - exercised through the climcal binary
    import json
    import os
    import signal
    import struct
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer

    def reply_json(obj) -> None:
        proto.write((json.dumps(obj) + "\n").encode())

    try:
        spec = json.loads(inp.readline())
        f = _load(spec)
    except BaseException as exc:  # noqa: BLE001 - reported to climcal, which stops
        reply_json({"ok": False, "error": _describe(exc)})
        return
    names = list(spec["parameters"])
    outputs = list(spec["outputs"])
    given_times = spec.get("times")
    vectorized = bool(spec.get("vectorized"))
    dim = len(names)
    reply_json({"ok": True})

    def read_exact(k: int) -> bytes:
        buf = bytearray()
        while len(buf) < k:
            b = inp.read(k - len(buf))
            if not b:
                return b""
            buf += b
        return bytes(buf)

    def ok(times, series) -> bytes:
        t = _floats(times, "model times")
        parts = [b"\x00", struct.pack("<I", len(t)), t.tobytes()]
        for name, s in zip(outputs, series):
            s = _floats(s, f"model output {name!r}")
            if len(s) != len(t):
                raise ValueError(f"model output {name!r} has {len(s)} values for {len(t)} times")
            parts.append(s.tobytes())
        return b"".join(parts)

    def err(exc: BaseException) -> bytes:
        msg = _describe(exc).encode("utf-8", "replace")
        return b"\x01" + struct.pack("<I", len(msg)) + msg

    def times_of(t):
        if t is None:
            t = given_times
        if t is None:
            raise ValueError("the model returned no times: return {'time': ..., ...}, a (times, dict) tuple or a DataFrame")
        return t

    while True:
        hdr = read_exact(4)
        if not hdr:
            return
        (n,) = struct.unpack("<I", hdr)
        rows = struct.unpack(f"<{n * dim}d", read_exact(8 * n * dim))
        out = []
        if vectorized:
            try:
                import numpy as np

                theta = np.asarray(rows, dtype=np.float64).reshape(n, dim)
                t, vals = _split_output(f(theta), outputs)
                t = times_of(t)
                arrays = [np.asarray(v, dtype=np.float64) for v in _pick(vals, outputs)]
                for name, a in zip(outputs, arrays):
                    if a.shape != (n, len(t)):
                        raise ValueError(f"vectorised model output {name!r} has shape {a.shape}, expected ({n}, {len(t)})")
                out = [ok(t, [a[i] for a in arrays]) for i in range(n)]
            except Exception as exc:  # noqa: BLE001 - a failed batch: -inf for each row
                out = [err(exc)] * n
        else:
            for i in range(n):
                try:
                    t, vals = _split_output(f(dict(zip(names, rows[i * dim : (i + 1) * dim]))), outputs)
                    out.append(ok(times_of(t), _pick(vals, outputs)))
                except Exception as exc:  # noqa: BLE001 - a failed evaluation: -inf for that walker
                    out.append(err(exc))
        proto.write(b"".join(out))


if __name__ == "__main__":  # pragma: no cover
    _main()
