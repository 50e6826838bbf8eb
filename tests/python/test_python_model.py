"""Python models in worker processes (``ModelRunner(..., processes=N)``, and
``[model] name = "python"`` in a run file): the same chain bit for bit as the
in-process model and for any number of processes; failures (raise, NaN, hang with
a timeout) are counted -inf; threads= with an in-process Python model is an error
rather than silently ignored. The model is tests/data/toy_python_model.py."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(DATA))
import toy_python_model as toy  # noqa: E402


def _problem():
    import climcal

    params = climcal.ParameterSet({"intercept": climcal.Normal(0.0, 5.0)}).add(
        "slope", climcal.Uniform(-1.0, 2.0), transform="logit", unit="1/yr"
    )
    obs = np.genfromtxt(DATA / "toy_linear.csv", delimiter=",", names=True, skip_header=1)
    target = climcal.Target().add_variable("y", obs["year"], obs["y"], obs["y_sigma"])
    return params, target


def _run(runner, n_steps=40, **kw):
    """toy_python.toml's run through the Python API."""
    import climcal

    params, target = _problem()
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=16, seed=7, **kw)
    state = s.initialize("ball", center={"intercept": 1.5, "slope": 0.3}, radius=0.02)
    return s.run(state, n_steps=n_steps, progress=False)


def _same(a, b):
    assert a.samples.tobytes() == b.samples.tobytes()
    assert a.log_prob.tobytes() == b.log_prob.tobytes()
    assert a.failures == b.failures


@pytest.fixture(scope="module")
def in_process():
    import climcal

    return _run(climcal.ModelRunner(model_factory=toy.line, output_variables=["y"]))


def test_processes_give_the_in_process_chain_for_any_number(in_process):
    import climcal

    # Raised (intercept > 1.62) and NaN (slope > 0.345) evaluations are failures.
    assert in_process.failures > 0
    assert np.all(in_process.samples[..., 0] <= 1.62)
    for n in (1, 2):
        r = climcal.ModelRunner(model_factory=toy.line, output_variables=["y"], processes=n)
        _same(in_process, _run(r))


def test_threads_with_an_in_process_python_model_is_an_error():
    import climcal

    r = climcal.ModelRunner(model_factory=toy.line, output_variables=["y"])
    with pytest.raises(ValueError, match="processes="):
        _run(r, n_steps=2, threads=2)
    rp = climcal.ModelRunner(model_factory=toy.line, output_variables=["y"], processes=2)
    with pytest.raises(ValueError, match="processes=2"):
        _run(rp, n_steps=2, threads=3)


def test_processes_need_a_function_a_worker_can_import():
    import climcal

    with pytest.raises(TypeError, match="module-level function"):
        climcal.ModelRunner(model_factory=lambda p: {"y": [0.0]}, output_variables=["y"], processes=2)
    with pytest.raises(ValueError, match="processes"):
        climcal.ModelRunner(model_factory=toy.line, output_variables=["y"], timeout=1.0)


def test_a_hanging_model_is_stopped_by_the_timeout():
    import climcal

    r = climcal.ModelRunner(model_factory=toy.line_hang, output_variables=["y"], processes=2, timeout=2.0)
    c = _run(r, n_steps=6)
    assert c.failures > 0
    assert np.all(c.samples[..., 0] <= 1.62)


def _cli():
    cli = os.environ.get("CLIMCAL_BIN") or str(ROOT / "target" / "debug" / "climcal")
    return cli if os.path.exists(cli) else None


@pytest.mark.skipif(_cli() is None, reason="no climcal binary (set CLIMCAL_BIN or cargo build --bin climcal)")
def test_run_file_python_model_gives_the_python_api_chain(in_process, tmp_path):
    import climcal

    for f in ("toy_python.toml", "toy_python_model.py", "toy_linear.csv"):
        shutil.copy(DATA / f, tmp_path / f)
    subprocess.run([_cli(), "run", "toy_python.toml", "-o", "cli.h5", "-q"], cwd=tmp_path, check=True)
    _same(in_process, climcal.load(tmp_path / "cli.h5"))
