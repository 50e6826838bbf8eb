#!/usr/bin/env bash
# MPI scaling on this machine: the `spin` model at ~200 us per evaluation, 32
# walkers, for 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread, and
# the coordination overhead per half-step with a ~0 us model. Side by side: emcee
# with a multiprocessing pool of 2 on a Python model of the same cost (skipped when
# emcee is missing). Prints a table; never fails because a competitor is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
source launch/mpi-env
SPIN_US=${SPIN_US:-200}
STEPS=${STEPS:-300}
WALKERS=${WALKERS:-32}

if ! command -v mpirun >/dev/null; then echo "40-mpi: mpirun not found, skipped"; exit 0; fi
cargo build --quiet --release --example mpi_toy || { echo "40-mpi: build failed"; exit 1; }
BIN=target/release/examples/mpi_toy
# Unlike the tests (launch/mpi-env), no --oversubscribe: with it OpenMPI yields
# the CPU while polling, which adds scheduler latency to every collective; 2 ranks
# fit on 2 cores.
MPIRUN=(mpirun --bind-to none)
[ "$(nproc)" -lt 2 ] && MPIRUN+=(--oversubscribe)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
field() { grep "^$1 " "$2" | head -1 | cut -d' ' -f2-; }
half() { grep "^per_half_step_us " "$1" | sed -E "s/.*$2=([0-9.]+).*/\1/"; }

# Calibrate the loop once, then give every rank the same iteration count.
"$BIN" --exec serial --spin-us "$SPIN_US" --steps 1 >"$TMP/cal.out"
ITERS=$(field model_iters "$TMP/cal.out" | cut -d' ' -f1)
echo "spin model: $(field model_iters "$TMP/cal.out"); $WALKERS walkers x 4 params, $STEPS steps; nproc=$(nproc)"

run() { # name ranks threads iters steps
  local name=$1 n=$2 t=$3 it=$4 st=$5
  "${MPIRUN[@]}" -n "$n" "$BIN" --threads "$t" --spin-iters "$it" --steps "$st" --walkers "$WALKERS" \
    >"$TMP/$name.out" 2>"$TMP/$name.err" || { echo "run $name failed: $(tail -3 "$TMP/$name.err")"; return 1; }
}
run base 1 1 "$ITERS" "$STEPS"
run thr2 1 2 "$ITERS" "$STEPS"
run rk2 2 1 "$ITERS" "$STEPS"
# ~0 us model: what a half-step costs beyond the model itself.
run o_serial 1 1 0 5000
run o_rk2 2 1 0 5000
"$BIN" --exec serial --spin-iters 0 --steps 5000 >"$TMP/o_plain.out"

base=$(field steps_per_second "$TMP/base.out")
printf '\n%-34s %12s %9s %10s %10s %10s\n' "layout (spin ${SPIN_US} us)" "steps/s" "speedup" "eval us" "comm us" "wait us"
for r in "base:1 rank x 1 thread" "thr2:1 rank x 2 threads" "rk2:2 ranks x 1 thread"; do
  k=${r%%:*}; label=${r#*:}
  sps=$(field steps_per_second "$TMP/$k.out")
  printf '%-34s %12.1f %8.2fx %10s %10s %10s\n' "$label" "$sps" "$(awk -v a="$sps" -v b="$base" 'BEGIN { print a / b }')" \
    "$(half "$TMP/$k.out" eval)" "$(half "$TMP/$k.out" comm)" "$(half "$TMP/$k.out" wait)"
done
echo "(per-half-step times on rank 0: 16 proposals per half-step; speedup target >= 1.8x on 2 cores)"

echo
printf '%-44s %12s\n' "coordination overhead (model ~0 us)" "us/half-step"
printf '%-44s %12s\n' "no MPI, serial executor: whole half-step" "$(half "$TMP/o_plain.out" total)"
printf '%-44s %12s\n' "mpirun -n 1: whole half-step" "$(half "$TMP/o_serial.out" total)"
printf '%-44s %12s\n' "mpirun -n 2: whole half-step" "$(half "$TMP/o_rk2.out" total)"
printf '%-44s %12s\n' "mpirun -n 2: comm (bcast+scatterv+gatherv)" "$(half "$TMP/o_rk2.out" comm)"
printf '%-44s %12s\n' "mpirun -n 2: wait" "$(half "$TMP/o_rk2.out" wait)"

# Side by side: emcee (Python) serial vs multiprocessing Pool(2), same model cost.
if python3 -c "import emcee" 2>/dev/null; then
  python3 - "$SPIN_US" "$WALKERS" <<'EOF'
import sys, time, multiprocessing as mp
import numpy as np, emcee
spin_us, nw = float(sys.argv[1]), int(sys.argv[2])
def lp(x):
    t = time.perf_counter() + spin_us * 1e-6   # busy wait, as the spin model
    while time.perf_counter() < t:
        pass
    return -0.5 * float(np.dot(x, x))
def rate(pool, steps=60):
    s = emcee.EnsembleSampler(nw, 4, lp, pool=pool)
    p0 = 0.1 * np.random.default_rng(1).standard_normal((nw, 4))
    t = time.perf_counter(); s.run_mcmc(p0, steps); return steps / (time.perf_counter() - t)
r1 = rate(None)
with mp.Pool(2) as pool:
    r2 = rate(pool)
print(f"\n{'emcee ' + emcee.__version__ + ' (same model cost)':<34} {'steps/s':>12} {'speedup':>9}")
print(f"{'serial':<34} {r1:12.1f} {1.0:8.2f}x")
print(f"{'multiprocessing Pool(2)':<34} {r2:12.1f} {r2 / r1:8.2f}x")
EOF
else
  echo "emcee not installed: side-by-side skipped"
fi
exit 0
