"""Deprecation helpers and emcee 2's walker initialisers."""

import warnings
from functools import wraps

import numpy as np

__all__ = ["sample_ball", "sample_ellipsoid", "deprecated", "deprecation_warning"]


def deprecation_warning(msg):
    warnings.warn(msg, category=DeprecationWarning, stacklevel=3)


def deprecated(alternate):
    def wrap(func):
        msg = f"'{func.__name__}' is deprecated."
        if alternate is not None:
            msg += f" Use '{alternate}' instead."

        @wraps(func)
        def inner(*args, **kwargs):
            deprecation_warning(msg)
            return func(*args, **kwargs)

        return inner

    return wrap


@deprecated(None)
def sample_ball(p0, std, size=1):
    """``size`` points ``p0 + std·N(0, 1)``."""
    assert len(p0) == len(std)
    return np.vstack([p0 + std * np.random.normal(size=len(p0)) for _ in range(size)])


@deprecated(None)
def sample_ellipsoid(p0, covmat, size=1):
    """``size`` draws of ``N(p0, covmat)``."""
    return np.random.multivariate_normal(np.atleast_1d(p0), np.atleast_2d(covmat), size=size)
