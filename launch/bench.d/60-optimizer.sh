#!/usr/bin/env bash
# Point estimation: climcal's L-BFGS / Nelder–Mead / particle swarm / random search
# against scipy.optimize.minimize on Rosenbrock-5D (evaluations and time to a
# tolerance), in one table. Runs in a few seconds; scipy rows are skipped when
# scipy is missing.
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
