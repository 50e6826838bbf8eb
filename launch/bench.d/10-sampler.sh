#!/usr/bin/env bash
# Sampler overhead side by side: log-density evaluations per second of climcal's
# ensemble sampler and of emcee 3.1 (plain and vectorize=True) on the same problem:
# a 10-D standard normal, 32 walkers, single thread, 1000 steps per run.
# Prints a table with wall-clock and CPU-time rates and the ratios climcal/emcee.
# A missing competitor is reported, not fatal.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"

STEPS=${STEPS:-1000}
REPEATS=${REPEATS:-200}

cargo build --release --example bench_sampler >/dev/null 2>&1 \
  || cargo build --release --no-default-features --example bench_sampler 2>&1 | tail -3
bin=target/release/examples/bench_sampler
if [ ! -x "$bin" ]; then
  echo "bench_sampler did not build"; exit 1
fi
climcal_out=$(RAYON_NUM_THREADS=1 "$bin" "$STEPS" "$REPEATS")
echo "$climcal_out" | grep '^#'
c_wall=$(echo "$climcal_out" | awk '/^climcal_evals_per_second/ {print $2}')
c_cpu=$(echo "$climcal_out" | awk '/^climcal_evals_per_cpu_second/ {print $2}')

py=$(command -v python3 || command -v python || true)
emcee_out=""
if [ -n "$py" ]; then
  emcee_out=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "$py" - "$STEPS" <<'PY' 2>&1
import sys, time
try:
    import numpy as np
    import emcee
except ImportError as e:
    print(f"# emcee not available: {e}")
    sys.exit(0)

steps = int(sys.argv[1])
ndim, nwalkers = 10, 32
print(f"# emcee {emcee.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")

def log_prob(x):
    return -0.5 * np.dot(x, x)

def log_prob_vec(x):
    return -0.5 * np.sum(x * x, axis=1)

def measure(label, fn, vectorize, steps, repeats):
    best_wall, cpu_total, evals_total = 0.0, 0.0, 0
    for r in range(repeats):
        rng = np.random.default_rng(42 + r)
        p0 = rng.normal(size=(nwalkers, ndim))
        s = emcee.EnsembleSampler(nwalkers, ndim, fn, vectorize=vectorize)
        c0, t0 = time.thread_time(), time.perf_counter()
        s.run_mcmc(p0, steps, progress=False)
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        evals = steps * nwalkers
        best_wall = max(best_wall, evals / dt)
        cpu_total += dc
        evals_total += evals
    print(f"{label} {best_wall:.0f} {evals_total / cpu_total:.0f}")

measure("emcee_plain", log_prob, False, steps, 3)
measure("emcee_vectorize", log_prob_vec, True, steps, 10)
PY
)
  echo "$emcee_out" | grep '^#'
fi

printf '\n%-32s %16s %16s %14s %14s\n' "implementation" "evals/s (wall)" "evals/s (CPU)" "climcal/x wall" "climcal/x CPU"
printf '%-32s %16s %16s %14s %14s\n' "climcal (serial, release)" "$c_wall" "${c_cpu:-n/a}" "1" "1"
for label in emcee_plain emcee_vectorize; do
  line=$(echo "$emcee_out" | awk -v l="$label" '$1 == l')
  if [ -z "$line" ]; then
    printf '%-32s %16s %16s %14s %14s\n' "$label" "missing" "-" "-" "-"
    continue
  fi
  w=$(echo "$line" | awk '{print $2}'); c=$(echo "$line" | awk '{print $3}')
  rw=$(awk -v a="$c_wall" -v b="$w" 'BEGIN { printf "%.0f", a / b }')
  rc=$(awk -v a="${c_cpu:-0}" -v b="$c" 'BEGIN { if (a > 0) printf "%.0f", a / b; else print "n/a" }')
  printf '%-32s %16s %16s %14s %14s\n' "$label (emcee)" "$w" "$c" "$rw" "$rc"
done
echo
echo "wall: best repeat; CPU: all repeats over thread CPU time (fair on a shared machine)."
echo "targets (issue 3): climcal >= 20 M evals/s single-threaded, >= 100x emcee."
