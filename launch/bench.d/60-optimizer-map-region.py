"""MAP vs the posterior's 90 % region, from a climcal chain file and `climcal optimize -o best.json`
of the same run file (parameter names, transforms and priors are read from the chain file).

    climcal optimize cluster-examples/two-layer-hadcrut5.toml -o best.json
    climcal run cluster-examples/two-layer-hadcrut5.toml -o hadcrut5.h5 [--steps 6000]
    python3 launch/bench.d/60-optimizer-map-region.py hadcrut5.h5 best.json DISCARD_STEPS

90 % region: (1) ln p(θ_MAP) of the physical parameters (prior + likelihood, no Jacobian) is
>= the 10th percentile of ln p(θ_i) over the posterior samples; (2) each parameter of the MAP
inside its marginal 5–95 % range. The stored log_prob is the sampler-space density, so the
log-Jacobians of the transforms are subtracted per sample."""
import json, sys
import h5py, numpy as np
path, best, discard_steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(path, "r") as f:
    g, c = f["mcmc"], f["climcal"]
    chain, lp = g["chain"][:], g["log_prob"][:]
    thin = int(c.attrs.get("thin", 1))
    text = lambda ds: [v.decode() if isinstance(v, bytes) else str(v) for v in c[ds][:]]
    names, transforms, priors = text("param_names"), text("transforms"), [json.loads(p) for p in text("priors")]
print(f"{path}: {chain.shape[0]} rows (thin {thin}) x {chain.shape[1]} walkers x {chain.shape[2]} parameters")
d = discard_steps // thin
x = chain[d:].reshape(-1, chain.shape[2]); l = lp[d:].reshape(-1)


def support(p):
    """The prior's support, which is what a logit transform maps onto (as climcal's ParameterDef)."""
    if p["dist"] == "bound":
        a, b = support(p["inner"])
        return max(a, p["lower"]), min(b, p["upper"])
    if "lower" in p:
        return p["lower"], p["upper"]
    return (0.0, np.inf) if p["dist"] in ("log_normal", "lognormal") else (-np.inf, np.inf)


# ln |dx/du| of the sampler-space transform, per sample.
jac = np.zeros(len(x))
for k, (tr, prior) in enumerate(zip(transforms, priors)):
    v = x[:, k]
    if tr == "logit":
        a, b = support(prior); jac += np.log((v - a) * (b - v) / (b - a))
    elif tr == "log":
        jac += np.log(v)
lphys = l - jac
bf = json.load(open(best))
pm = bf["params"]; lmap = bf.get("ln_posterior", bf.get("best_ln_posterior"))
print(f"{len(x)} samples after discarding {discard_steps} steps")
q10 = np.percentile(lphys, 10)
print(f"ln p(MAP) = {lmap:.3f}; samples' physical ln p: 10th pct {q10:.3f}, median {np.median(lphys):.3f}, max {lphys.max():.3f}; MAP above {100*np.mean(lphys < lmap):.1f} % of samples")
for k, n in enumerate(names):
    q = np.percentile(x[:, k], [5, 50, 95])
    print(f"{n:>14}: MAP {pm[n]:.4g}  median {q[1]:.4g} [5–95 %: {q[0]:.4g}–{q[2]:.4g}]  MAP at percentile {100*np.mean(x[:, k] < pm[n]):.1f}  inside: {q[0] <= pm[n] <= q[2]}")
