#!/usr/bin/env bash
# Point estimation: climcal's L-BFGS / Nelder–Mead / particle swarm / random search
# against scipy.optimize.minimize on Rosenbrock-5D (evaluations and time to a
# tolerance), in one table; then the same methods on the MAP of the two-layer
# HadCRUT5 calibration (climcal only: the two-layer model, its forcing file and the
# run file's target are not reachable from Python, so there is no scipy row).
# Runs in a few seconds; scipy rows are skipped when scipy is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --example bench_optimizer 2>&1 | tail -1
out=$(target/release/examples/bench_optimizer 5) || { echo "bench_optimizer failed"; exit 1; }
if command -v python3 >/dev/null; then
  printf '%s\n' "$out" | python3 launch/bench.d/60-optimizer.py
else
  echo "python3 missing: climcal rows only"
  printf '%s\n' "$out" | column -t -s $'\t'
fi
echo
echo "two-layer HadCRUT5 MAP (cluster-examples/two-layer-hadcrut5.toml, 6 parameters): evaluations and time until ln p >= ln p* - 1e-3"
echo "(L-BFGS, Nelder-Mead: one restart from the prior medians; swarm, random search: prior draws, seed 1; one thread; lnp_gap = ln p* - ln p(best))"
out=$(target/release/examples/bench_optimizer 5 two-layer) || { echo "bench_optimizer two-layer failed"; exit 1; }
printf '%s\n' "$out" | column -t -s $'\t'
