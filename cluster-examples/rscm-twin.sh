#!/usr/bin/env bash
# One command for the RSCM twin experiment (cluster-examples/rscm-twin.toml):
# builds climcal with the `rscm` feature, calibrates, prints `climcal info`, and
# checks that each parameter's 90 % posterior interval (5-95 %, after discarding
# the first 500 steps) covers the truth the observations were made with.
#   bash cluster-examples/rscm-twin.sh            # one process
#   MPI=2 bash cluster-examples/rscm-twin.sh      # under mpirun -n 2
# Output: rscm-twin.h5 in the current directory (OUT=path to change it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${OUT:-$PWD/rscm-twin.h5}"
(cd "$repo" && cargo build --release --quiet --features rscm --bin climcal)
cli="$repo/target/release/climcal"
if [ -n "${MPI:-}" ]; then
  source "$repo/launch/mpi-env"
  "${MPIRUN[@]}" -n "$MPI" "$cli" run "$repo/cluster-examples/rscm-twin.toml" -o "$out" --force --threads 1
else
  "$cli" run "$repo/cluster-examples/rscm-twin.toml" -o "$out" --force
fi
"$cli" info "$out" --discard 500
"$cli" info "$out" --discard 500 --json | python3 -c '
import json, sys
truth = {"tau": 40.0, "erf_2xco2": 3.93}   # examples/rscm_twin.rs
ok = True
for p in json.load(sys.stdin)["parameters"]:
    t = truth[p["name"]]
    inside = p["q05"] <= t <= p["q95"]
    ok &= inside
    where = "inside" if inside else "OUTSIDE"
    print("%s: truth %s %s the 90 %% interval [%.4g, %.4g]" % (p["name"], t, where, p["q05"], p["q95"]))
sys.exit(0 if ok else 1)
'
