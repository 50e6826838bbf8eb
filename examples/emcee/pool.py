"""A process pool evaluates the walkers (emcee's "Parallelization" tutorial):
a log-probability that costs ~1 ms, ``pool=multiprocessing.Pool(2)``.
Run: python pool.py [out.npz] [--climcal]"""

import time
from multiprocessing import Pool

import numpy as np

from _switch import emcee_module, out_path

emcee = emcee_module()


def log_prob(theta):
    t = time.perf_counter() + 1e-3
    while time.perf_counter() < t:  # a model that takes 1 ms
        pass
    return -0.5 * np.sum(theta**2 / np.array([1.0, 4.0, 0.25]))


if __name__ == "__main__":
    np.random.seed(2)
    nwalkers, ndim = 16, 3
    p0 = np.random.randn(nwalkers, ndim)
    with Pool(2) as pool:
        sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, pool=pool)
        t0 = time.perf_counter()
        sampler.run_mcmc(p0, 100)
        wall = time.perf_counter() - t0
    print(f"{nwalkers * 100 / wall:.0f} evaluations/s with a pool of 2")
    samples = sampler.get_chain(discard=50, flat=True)
    print("std", samples.std(axis=0), "true", [1.0, 2.0, 0.5])
    np.savez(out_path("pool.npz"), samples=samples, tau=sampler.get_autocorr_time(discard=50, tol=0))
