"""A run saved to an HDF5 backend, stopped and resumed, with a DIME-like
workflow check: run in chunks until the chain is 50 autocorrelation times long
(after emcee's "Saving & monitoring progress" tutorial; the OpenSCM-Calibration
workflow stops at 50 tau too). The first part runs
in one sampler; a second sampler opens the same file and continues from
``get_last_sample()``. Target: a 4-D Gaussian with correlations.
Run: python resume_backend.py [out.h5] [--climcal]"""

import os

import numpy as np

from _switch import emcee_module, out_path

emcee = emcee_module()

ndim = 4
rng = np.random.default_rng(7)
a = rng.normal(size=(ndim, ndim))
cov = a @ a.T + ndim * np.eye(ndim)
icov = np.linalg.inv(cov)
mean = np.array([1.0, -2.0, 0.5, 3.0])


def log_prob(x, mu, icov):
    d = x - mu
    return -0.5 * d @ icov @ d


filename = out_path("resume_backend.h5")
if os.path.exists(filename):
    os.remove(filename)
np.random.seed(3)
nwalkers = 24
backend = emcee.backends.HDFBackend(filename)
backend.reset(nwalkers, ndim)
sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, args=[mean, icov], backend=backend,
                                moves=[(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)])
sampler.run_mcmc(np.random.randn(nwalkers, ndim), 500)
del sampler, backend  # "the job ended"

backend = emcee.backends.HDFBackend(filename)
print("resuming at iteration", backend.iteration)
sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, args=[mean, icov], backend=backend,
                                moves=[(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)])
for _ in sampler.sample(backend.get_last_sample(), iterations=20000):
    if sampler.iteration % 250:
        continue
    tau = sampler.get_autocorr_time(tol=0)
    if np.all(tau * 50 < sampler.iteration):  # stop at 50 tau
        break
print("stopped at", sampler.iteration, "tau", tau)
reader = emcee.backends.HDFBackend(filename, read_only=True)
flat = reader.get_chain(discard=int(2 * np.max(tau)), flat=True)
print("mean", flat.mean(axis=0), "true", mean)
np.savez(filename + ".npz", samples=flat, tau=tau, truth=mean, cov=cov)
