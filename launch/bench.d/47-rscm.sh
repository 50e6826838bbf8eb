#!/usr/bin/env bash
# RSCM models (feature rscm), side by side in one run:
#   1. the cost per evaluation of climcal's RscmRunner (build at new parameters,
#      run, read) next to the built-in two-layer model on the same years
#      (examples/bench_rscm.rs);
#   2. whole calibrations of the RSCM twin (cluster-examples/rscm-twin.toml: 16
#      walkers, STEPS steps): `climcal run` with 1 and 2 threads against RSCM's own
#      sampler, rscm-calibrate 0.5.0, with 1 and 2 rayon threads on the same model,
#      priors and observations (examples/bench_rscm_calibrate.rs). Evaluations/s:
#      climcal's from the chain file's wall_seconds (the sampling loop),
#      rscm-calibrate's from its run call; initial evaluations counted in both.
# Builds first (cargo: a no-op when nothing changed). STEPS (default 40) sets the length.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS="${STEPS:-40}"
echo "[bench 47-rscm] cargo build --release --features bench-rscm-calibrate (climcal, bench_rscm, bench_rscm_calibrate)"
cargo build --release --quiet --features bench-rscm-calibrate --bin climcal --example bench_rscm --example bench_rscm_calibrate
CLI=target/release/climcal
EX=target/release/examples

"$EX/bench_rscm"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/rscm-twin"
cp cluster-examples/rscm-twin/* "$TMP/rscm-twin/"
sed -e "s/^n_steps = .*/n_steps = $STEPS/" cluster-examples/rscm-twin.toml >"$TMP/twin.toml"
rate() { # threads -> evals/s of climcal run
  "$CLI" run "$TMP/twin.toml" -o "$TMP/t$1.h5" --force -q --threads "$1" >/dev/null
  python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r') as f:
    print(f\"{16 * ($STEPS + 1) / f['climcal'].attrs['wall_seconds']:.1f}\")" "$TMP/t$1.h5"
}
rc_rate() { # threads -> evals/s of rscm-calibrate
  RAYON_NUM_THREADS="$1" "$EX/bench_rscm_calibrate" "$STEPS" 1 | awk '/^rscm_calibrate_evals_per_second/ { print $2 }'
}
declare -A best
for _ in 1 2; do # two interleaved repeats, best of each
  for k in c1 c2 r1 r2; do
    case $k in c1) v=$(rate 1) ;; c2) v=$(rate 2) ;; r1) v=$(rc_rate 1) ;; r2) v=$(rc_rate 2) ;; esac
    best[$k]=$(python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "${best[$k]:-0}" "$v")
  done
done
echo "RSCM twin (CarbonCycle + CO2ERF, 1850-2020), 16 walkers x $STEPS steps, best of 2 (evaluations/s):"
printf '  climcal run, 1 thread        %8.1f\n' "${best[c1]}"
printf '  rscm-calibrate, 1 thread     %8.1f   climcal %.2fx\n' "${best[r1]}" "$(python3 -c "print(${best[c1]} / ${best[r1]})")"
printf '  climcal run, 2 threads       %8.1f\n' "${best[c2]}"
printf '  rscm-calibrate, 2 threads    %8.1f   climcal %.2fx\n' "${best[r2]}" "$(python3 -c "print(${best[c2]} / ${best[r2]})")"
