"""Integrated autocorrelation time (emcee's ``autocorr`` module).

Definitions as in emcee's documentation: the normalised autocorrelation
function of each walker's series by FFT, averaged over walkers; the cumulative
estimate ``tau(M) = 1 + 2 sum_{t=1}^{M} rho(t)``; Sokal's automatic window, the
smallest ``M`` with ``M >= c tau(M)``. A chain shorter than ``tol`` times the
estimate raises :class:`AutocorrError` (or logs a warning with ``quiet=True``).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["function_1d", "integrated_time", "AutocorrError"]

logger = logging.getLogger(__name__)


def _fft_length(n: int) -> int:
    size = 1
    while size < n:
        size <<= 1
    return size


def function_1d(x):
    """Normalised autocorrelation function of a 1-D series (FFT, zero-padded)."""
    x = np.atleast_1d(x)
    if x.ndim != 1:
        raise ValueError("invalid dimensions for 1D autocorrelation function")
    n = _fft_length(len(x))
    f = np.fft.fft(x - np.mean(x), n=2 * n)
    acf = np.fft.ifft(f * np.conjugate(f))[: len(x)].real
    return acf / acf[0]


def auto_window(taus, c):
    """Index of the first ``M`` with ``M >= c tau(M)`` (the last index if none)."""
    below = np.arange(len(taus)) < c * taus
    if np.any(below):
        return int(np.argmin(below))
    return len(taus) - 1


class AutocorrError(Exception):
    """The chain is too short for a reliable autocorrelation time; ``tau``
    holds the estimate all the same."""

    def __init__(self, tau, *args, **kwargs):
        self.tau = tau
        super().__init__(*args, **kwargs)


def integrated_time(x, c=5, tol=50, quiet=False, has_walkers=True):
    """Integrated autocorrelation time of each parameter.

    Parameters
    ----------
    x : array (n_steps,), (n_steps, n_walkers) or (n_steps, n_walkers, n_dim)
        A 2-D array is ``(n_steps, n_walkers)`` unless ``has_walkers=False``
        (then ``(n_steps, n_dim)``, one walker).
    c : float, default 5
        Sokal's window constant.
    tol : float, default 50
        The chain must be longer than ``tol`` times the estimate.
    quiet : bool, default False
        Log a warning instead of raising :class:`AutocorrError`.

    Returns
    -------
    ndarray (n_dim,)
    """
    x = np.atleast_1d(x)
    if x.ndim == 1:
        x = x[:, None, None]
    elif x.ndim == 2:
        x = x[:, None, :] if not has_walkers else x[:, :, None]
    if x.ndim != 3:
        raise ValueError("invalid dimensions")
    n_t, n_w, n_d = x.shape
    tau_est = np.empty(n_d)
    windows = np.empty(n_d, dtype=int)
    for d in range(n_d):
        f = np.zeros(n_t)
        for k in range(n_w):
            f += function_1d(x[:, k, d])
        f /= n_w
        taus = 2.0 * np.cumsum(f) - 1.0
        windows[d] = auto_window(taus, c)
        tau_est[d] = taus[windows[d]]
    flag = tol * tau_est > n_t
    if np.any(flag):
        msg = (
            f"The chain is shorter than {tol} times the integrated autocorrelation time for {int(np.sum(flag))} "
            f"parameter(s). Use this estimate with caution and run a longer chain!\n"
            f"N/{tol} = {n_t / tol:.0f};\ntau: {tau_est}"
        )
        if not quiet:
            raise AutocorrError(tau_est, msg)
        logger.warning(msg)
    return tau_est
