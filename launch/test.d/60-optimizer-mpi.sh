#!/usr/bin/env bash
# `climcal optimize` gives the same best fit (bit for bit, same evaluation count)
# without mpirun and under mpirun -n 2 and 3, for every method and for MAP and MLE:
# the workers evaluate the optimiser's objective, not the sampler's density; and
# `climcal run --init best` gives the same chain with and without mpirun.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mpirun >/dev/null; then
  echo "60-optimizer-mpi: mpirun not found (install openmpi-bin via launch/install-deps)" >&2
  exit 1
fi
source launch/mpi-env

cargo build --quiet --bin climcal
BIN="$PWD/target/debug/climcal"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp tests/data/toy_linear.toml tests/data/toy_linear.csv "$TMP/"
cd "$TMP"
fail=0
for method in lbfgs nelder-mead particle-swarm random-search:500; do
  for mle in "" "--mle"; do
    args=(optimize toy_linear.toml --method "$method" --restarts 3 --seed 5 --json -q $mle)
    timeout 120 "$BIN" "${args[@]}" >serial.json 2>serial.err || { echo "  FAIL serial $method $mle"; tail -3 serial.err; fail=1; continue; }
    for n in 2 3; do
      if timeout 120 "${MPIRUN[@]}" -n "$n" "$BIN" "${args[@]}" >"mpi$n.json" 2>"mpi$n.err" && cmp -s serial.json "mpi$n.json"; then
        echo "  ok   $method ${mle:---map} mpirun -n $n"
      else
        echo "  FAIL $method ${mle:---map} mpirun -n $n differs from serial (or failed):"; diff serial.json "mpi$n.json" | head -5 || true; tail -3 "mpi$n.err"; fail=1
      fi
    done
  done
done
# MCMC started around the best fit: the same chain with and without mpirun.
chain() { h5dump -d mcmc/chain "$1" | tail -n +2; }
if timeout 120 "$BIN" run toy_linear.toml -o s.h5 --steps 30 -q --init best 2>run.err \
  && timeout 120 "${MPIRUN[@]}" -n 2 "$BIN" run toy_linear.toml -o m.h5 --steps 30 -q --init best 2>>run.err \
  && cmp -s <(chain s.h5) <(chain m.h5); then
  echo "  ok   run --init best: mpirun -n 2 chain = serial chain"
else
  echo "  FAIL run --init best under mpirun -n 2"; tail -3 run.err; fail=1
fi
exit $fail
