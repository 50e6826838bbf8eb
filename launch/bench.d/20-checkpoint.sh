#!/usr/bin/env bash
# Checkpoint cost of the HDF5 chain file, as a share of run time: 10 parameters,
# 64 walkers, a 20 µs model (fixed CPU work, work_us), checkpoint_every = 100, one thread.
# climcal records the time spent in checkpoints in the file (climcal/checkpoint_seconds).
# Compared with emcee's HDFBackend (which opens the file and writes at every step)
# on the same problem, when emcee is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --bin climcal 2>&1 | tail -n 1
BIN="$PWD/target/release/climcal"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
STEPS="${CLIMCAL_BENCH_STEPS:-2000}"

cat > "$WORK/bench.toml" <<TOML
[model]
name = "gaussian"
options = { dim = 10, work_us = 20 }

[sampler]
n_walkers = 64
n_steps = $STEPS
seed = 1
init = { method = "ball", center = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], radius = 0.1 }

[output]
checkpoint_every = 100
TOML

for ck in 100 10; do
  sed "s/checkpoint_every = 100/checkpoint_every = $ck/" "$WORK/bench.toml" > "$WORK/b$ck.toml"
  "$BIN" run "$WORK/b$ck.toml" -q --threads 1 -o "$WORK/b$ck.h5"
done

python3 - "$WORK" "$STEPS" <<'PY'
import sys, time
import numpy as np
import h5py
work, steps = sys.argv[1], int(sys.argv[2])
rows = []
for ck in (100, 10):
    with h5py.File(f"{work}/b{ck}.h5", "r") as f:
        a = f["climcal"].attrs
        wall, ckpt, n = float(a["wall_seconds"]), float(a["checkpoint_seconds"]), int(a["n_checkpoints"])
    rows.append((f"climcal, checkpoint_every={ck}", steps, wall, ckpt, n))

try:
    import emcee
    esteps = max(steps // 10, 50)
    def log_prob(x):
        t = time.perf_counter() + 20e-6
        while time.perf_counter() < t:
            pass
        return -0.5 * float(np.dot(x, x))
    p0 = 0.1 * np.random.default_rng(1).standard_normal((64, 10))
    s = emcee.EnsembleSampler(64, 10, log_prob)
    t0 = time.perf_counter(); s.run_mcmc(p0, esteps, progress=False); t_mem = time.perf_counter() - t0
    be = emcee.backends.HDFBackend(f"{work}/emcee.h5"); be.reset(64, 10)
    s = emcee.EnsembleSampler(64, 10, log_prob, backend=be)
    t0 = time.perf_counter(); s.run_mcmc(p0, esteps, progress=False); t_h5 = time.perf_counter() - t0
    rows.append(("emcee HDFBackend (every step)", esteps, t_h5, t_h5 - t_mem, esteps))
except ImportError:
    print("(emcee not installed: no comparison)")

print()
print(f"{'run (10 params, 64 walkers, 20 us model)':<34} {'steps':>6} {'run s':>8} {'ckpt s':>8} {'ckpts':>6} {'ms/ckpt':>8} {'ckpt %':>7}")
for name, st, wall, ck, n in rows:
    print(f"{name:<34} {st:>6} {wall:>8.3f} {ck:>8.4f} {n:>6} {1e3 * ck / max(n, 1):>8.3f} {100 * ck / wall:>6.2f}%")
c100 = rows[0]
print(f"\ntarget: checkpoint cost < 2% at checkpoint_every=100 -> {'met' if 100 * c100[3] / c100[2] < 2 else 'NOT met'}")
if len(rows) == 3:
    e = rows[2]
    print(f"per-step storage overhead: emcee {1e3 * e[3] / e[1]:.3f} ms, climcal {1e3 * c100[3] / c100[1]:.4f} ms "
          f"(ratio {(e[3] / e[1]) / max(c100[3] / c100[1], 1e-12):.0f}x)")
PY
