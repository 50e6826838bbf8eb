"""Named parameters: the log-probability gets a dict (emcee >= 3.1), with a
group of parameters under one name. A normal model for 100 data points with
unknown mean and variance, plus a 2-vector of offsets.
Run: python named_parameters.py [out.npz] [--climcal]"""

import numpy as np

from _switch import emcee_module, out_path

emcee = emcee_module()

rng = np.random.default_rng(11)
data = rng.normal(1.5, 2.0, size=100)
other = rng.normal([-1.0, 2.0], 0.5, size=(40, 2))


def log_prob(p):
    if p["var"] <= 0:
        return -np.inf
    ll = -0.5 * np.sum((data - p["mean"]) ** 2 / p["var"] + np.log(p["var"]))
    ll += -0.5 * np.sum((other - p["offsets"]) ** 2 / 0.25)
    return ll


names = {"mean": 0, "var": 1, "offsets": [2, 3]}
np.random.seed(8)
nwalkers = 16
p0 = np.column_stack([1.5 + 0.1 * np.random.randn(nwalkers), 4 + 0.1 * np.random.randn(nwalkers),
                      0.1 * np.random.randn(nwalkers, 2)])
sampler = emcee.EnsembleSampler(nwalkers, 4, log_prob, parameter_names=names)
sampler.run_mcmc(p0, 4000)
samples = sampler.get_chain(discard=500, flat=True)
print("mean, var, offsets:", samples.mean(axis=0))
np.savez(out_path("named_parameters.npz"), samples=samples, tau=sampler.get_autocorr_time(discard=500, tol=0))
