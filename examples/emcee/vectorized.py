"""A vectorised log-probability (one call per half-ensemble), after emcee's
quickstart: a 5-D Gaussian with a random covariance, ``vectorize=True``.
Run: python vectorized.py [out.npz] [--climcal]"""

import numpy as np

from _switch import emcee_module, out_path

emcee = emcee_module()

ndim = 5
rng = np.random.default_rng(42)
means = rng.random(ndim)
cov = 0.5 - rng.random((ndim, ndim))
cov = np.triu(cov)
cov += cov.T - np.diag(cov.diagonal())
cov = cov @ cov
icov = np.linalg.inv(cov)


def log_prob(x, mu, icov):
    d = x - mu
    return -0.5 * np.einsum("ij,jk,ik->i", d, icov, d)


np.random.seed(5)
nwalkers = 32
p0 = np.random.rand(nwalkers, ndim)
sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, args=[means, icov], vectorize=True)
state = sampler.run_mcmc(p0, 500)
sampler.reset()
sampler.run_mcmc(state, 3000)
samples = sampler.get_chain(flat=True)
print("mean", samples.mean(axis=0), "true", means)
print("acceptance", np.mean(sampler.acceptance_fraction))
np.savez(out_path("vectorized.npz"), samples=samples, tau=sampler.get_autocorr_time(), truth=means, cov=cov)
