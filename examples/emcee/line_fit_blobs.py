"""Fitting a line to data with underestimated error bars, after emcee's
"Fitting a model to data" tutorial: parameters (m, b, ln f), flat priors,
and the log-prior and log-likelihood kept as blobs (as OpenSCM-Calibration
does). Run: python line_fit_blobs.py [out.npz] [--climcal]"""

import numpy as np

from _switch import emcee_module, out_path

emcee = emcee_module()

rng = np.random.default_rng(123)
m_true, b_true, f_true = -0.9594, 4.294, 0.534
N = 50
x = np.sort(10 * rng.random(N))
yerr = 0.1 + 0.5 * rng.random(N)
y = m_true * x + b_true
y += np.abs(f_true * y) * rng.normal(size=N)
y += yerr * rng.normal(size=N)


def log_prior(theta):
    m, b, log_f = theta
    if -5.0 < m < 0.5 and 0.0 < b < 10.0 and -10.0 < log_f < 1.0:
        return 0.0
    return -np.inf


def log_likelihood(theta):
    m, b, log_f = theta
    model = m * x + b
    sigma2 = yerr**2 + model**2 * np.exp(2 * log_f)
    return -0.5 * np.sum((y - model) ** 2 / sigma2 + np.log(sigma2))


def log_probability(theta):
    lp = log_prior(theta)
    if not np.isfinite(lp):
        return -np.inf, lp, -np.inf
    ll = log_likelihood(theta)
    return lp + ll, lp, ll


np.random.seed(42)
start = np.array([-1.0, 4.5, np.log(0.5)])
pos = start + 1e-4 * np.random.randn(32, 3)
dtype = [("log_prior", float), ("log_like", float)]
sampler = emcee.EnsembleSampler(32, 3, log_probability, blobs_dtype=dtype)
sampler.run_mcmc(pos, 2500)

samples = sampler.get_chain(discard=500, thin=5, flat=True)
blobs = sampler.get_blobs(discard=500, thin=5, flat=True)
lp = sampler.get_log_prob(discard=500, thin=5, flat=True)
assert np.allclose(blobs["log_prior"] + blobs["log_like"], lp)
tau = sampler.get_autocorr_time(discard=500)
print("tau", tau, "acceptance", np.mean(sampler.acceptance_fraction))
for name, col in zip(["m", "b", "log_f"], samples.T):
    q = np.percentile(col, [16, 50, 84])
    print(f"{name} = {q[1]:.3f} -{q[1] - q[0]:.3f} +{q[2] - q[1]:.3f}")
np.savez(out_path("line_fit_blobs.npz"), samples=samples, tau=tau, log_like=blobs["log_like"])
