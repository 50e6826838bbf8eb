"""Shared fixtures for the climcal Python tests: a small one-box calibration
problem with synthetic observations, and the Agg backend for plots.

climcal is imported inside the fixtures only, so that test files which do not
use the package (test_emcee_compat.py, test_storage_live.py) run without it."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

TIMES = np.arange(1850.0, 2021.0)
FORCING = 0.02 * (TIMES - 1850.0)
TRUE = {"lambda": 1.2, "heat_capacity": 8.0}


def one_box_python(params, times=TIMES, forcing=FORCING):
    """The built-in ``one_box`` model written in plain Python floats, operation for
    operation as in Rust (so the results are bitwise identical)."""
    lam, c = params["lambda"], params["heat_capacity"]
    t = [0.0] * len(times)
    for i in range(len(times) - 1):
        dt = times[i + 1] - times[i]
        t[i + 1] = t[i] + dt * (forcing[i] - lam * t[i]) / c
    return {"tas": np.array(t)}


def one_box_batch(theta, times=TIMES, forcing=FORCING):
    """Vectorised one-box: ``theta`` is (n, 2) with columns (lambda, heat_capacity)."""
    lam, c = theta[:, 0], theta[:, 1]
    out = np.zeros((theta.shape[0], len(times)))
    for i in range(len(times) - 1):
        dt = times[i + 1] - times[i]
        out[:, i + 1] = out[:, i] + dt * (forcing[i] - lam * out[:, i]) / c
    return {"tas": out}


@pytest.fixture(scope="session")
def observations():
    """Synthetic observations of the one-box model at TRUE, every 5th year, with
    N(0, 0.05) noise (seed 1)."""
    rng = np.random.default_rng(1)
    truth = one_box_python(TRUE)["tas"]
    idx = np.arange(0, len(TIMES), 5)
    sigma = np.full(idx.size, 0.05)
    return TIMES[idx], truth[idx] + rng.normal(0, 0.05, idx.size), sigma


@pytest.fixture()
def params():
    import climcal

    return climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0)}).add(
        "heat_capacity", climcal.LogNormal(2.0, 0.5), transform="log"
    )


@pytest.fixture()
def target(observations):
    import climcal

    t, v, s = observations
    return climcal.Target().add_variable("tas", t, v, s)
