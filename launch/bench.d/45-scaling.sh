#!/usr/bin/env bash
# Scaling on this machine with fixed-CPU-work models (mpi_toy's calibrated loop,
# not a wall-clock busy-wait): ranks x threads, uneven cost (10x spread with
# x[0]), unequal workers (rank 1 twice as slow), a cheap model, and a loaded
# node (one CPU-bound process beside the job). Every layout is run REPEATS times,
# interleaved, and the median is printed, so that ratios come from one run.
#
#   WALKERS [64] STEPS [60] WORK_US [200] REPEATS [5] BIN [a release build of mpi_toy]
# Rows marked "static blocks" run the same binary with --static: equal blocks per
# rank (the scheme before dynamic distribution), for per-rank waiting before/after.
#   PRIORITY=1   on a machine shared with other jobs (Linux, root): run in an
#                autogroup of its own at nice -20, and the runs without the CPU hog
#                under SCHED_FIFO (chrt -f 5), so that the others' load disturbs
#                less; the loaded-node runs stay under the normal scheduler (CFS),
#                job and hog alike, since that is what the test is about
set -uo pipefail
cd "$(dirname "$0")/../.."
source launch/mpi-env
WALKERS=${WALKERS:-64}; STEPS=${STEPS:-60}; WORK_US=${WORK_US:-200}; REPEATS=${REPEATS:-5}
if [ "${PRIORITY:-0}" = 1 ] && [ -z "${_SCALING_PRIO:-}" ]; then
  export _SCALING_PRIO=1
  exec setsid bash -c 'echo -20 > /proc/$$/autogroup 2>/dev/null; exec "$@"' _ bash "$0" "$@"
fi
if ! command -v mpirun >/dev/null; then echo "45-scaling: mpirun not found, skipped"; exit 0; fi
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --release --example mpi_toy || { echo "45-scaling: build failed"; exit 1; }
  BIN=target/release/examples/mpi_toy
fi
MPIRUN=(mpirun --bind-to none)
TMP=$(mktemp -d)
HOG=""
trap '[ -n "$HOG" ] && kill "$HOG" 2>/dev/null; rm -rf "$TMP"' EXIT
field() { grep "^$1 " "$2" | head -1 | cut -d' ' -f2-; }
ITERS=$("$BIN" --exec serial --spin-us "$WORK_US" --steps 1 | grep '^model_iters' | cut -d' ' -f2)
CHEAP=$("$BIN" --exec serial --spin-us 5 --steps 1 | grep '^model_iters' | cut -d' ' -f2)

RT=(); [ "${PRIORITY:-0}" = 1 ] && command -v chrt >/dev/null && RT=(chrt -f 5)
# name ranks threads args...  -> appends "steps/s rank-times... wall" to $TMP/name,
# the number of chunks taken back to $TMP/name.tb and mpi_toy's advice to $TMP/name.adv
one() {
  local name=$1 n=$2 t=$3; shift 3
  local pfx=("${RT[@]}"); [ -n "$HOG" ] && pfx=()
  if "${pfx[@]}" "${MPIRUN[@]}" -n "$n" "$BIN" --threads "$t" --walkers "$WALKERS" "$@" >"$TMP/o" 2>"$TMP/e"; then
    echo "$(field steps_per_second "$TMP/o") $(field rank_eval_comm_wait_seconds "$TMP/o") $(field wall_seconds "$TMP/o")" >>"$TMP/$name"
    echo "$(field taken_back "$TMP/o")" >>"$TMP/$name.tb"
    grep '^advice' "$TMP/o" >>"$TMP/$name.adv" || true
  else
    echo "run $name failed: $(tail -2 "$TMP/e")" >&2
  fi
}
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }
rate() { cut -d' ' -f1 "$TMP/$1" | med; }
taken() { [ -s "$TMP/$1.tb" ] && med <"$TMP/$1.tb" || echo -; }
# median share of the wall time that rank r waited (from "r:eval/comm/wait")
waitshare() { awk -v r="$2" '{ for (i = 2; i < NF; i++) { split($i, a, "[:/]"); if (a[1] == r) print a[4] / $NF } }' "$TMP/$1" | med; }

hog_on() { python3 -c 'while True: pass' & HOG=$!; sleep 0.3; }
hog_off() { kill "$HOG" 2>/dev/null; wait "$HOG" 2>/dev/null; HOG=""; }

W=(--spin-iters "$ITERS" --steps "$STEPS")
U=(--spin-iters "$ITERS" --steps "$STEPS" --spread 10)
S=(--spin-iters "$ITERS" --steps "$STEPS" --spread 10 --slow-rank 1 --slow-factor 2)
C=(--spin-iters "$CHEAP" --steps $((STEPS * 20)))
echo "45-scaling: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $WALKERS walkers x 4 params"
echo "work: ${WORK_US} us = $ITERS iterations; cheap: 5 us = $CHEAP iterations; $REPEATS repeats, medians"
# Names: <model><ranks><threads>[s = equal static blocks instead of dynamic chunks].
for rep in $(seq 1 "$REPEATS"); do
  one w11 1 1 "${W[@]}"; one w21 2 1 "${W[@]}"; one w12 1 2 "${W[@]}"; one w21s 2 1 "${W[@]}" --static
  one u11 1 1 "${U[@]}"; one u21 2 1 "${U[@]}"; one u12 1 2 "${U[@]}"; one u21s 2 1 "${U[@]}" --static
  one s21 2 1 "${S[@]}"; one s21s 2 1 "${S[@]}" --static
  one c11 1 1 "${C[@]}"; one c21 2 1 "${C[@]}"; one c12 1 2 "${C[@]}"
  hog_on
  one l11 1 1 "${W[@]}"; one l21 2 1 "${W[@]}"; one l12 1 2 "${W[@]}"; one l21s 2 1 "${W[@]}" --static
  hog_off
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" 'BEGIN { printf "%.0f %%", 100 * a }'; }
echo
printf '%-50s %9s %9s %8s %8s %7s\n' "model, layout (ranks x threads)" "steps/s" "speedup" "wait r0" "wait r1" "taken"
row() { # name label base-name
  [ -s "$TMP/$1" ] || return 0
  local r; r=$(rate "$1")
  local w1=-; [ "${1:1:1}" = 2 ] && w1=$(pct "$(waitshare "$1" 1)")
  local w0=-; [ "${1:1:1}" = 2 ] && w0=$(pct "$(waitshare "$1" 0)")
  printf '%-50s %9.1f %8sx %8s %8s %7s\n' "$2" "$r" "$(ratio "$r" "$(rate "$3")")" "$w0" "$w1" "$(taken "$1")"
}
for g in "w:fixed work ${WORK_US} us" "u:uneven cost (10x spread)" "c:cheap (5 us)" "l:loaded node (+1 CPU hog)"; do
  k=${g%%:*}; label=${g#*:}
  row "${k}11" "$label, 1 x 1" "${k}11"
  row "${k}21" "$label, 2 x 1" "${k}11"
  row "${k}12" "$label, 1 x 2" "${k}11"
  row "${k}21s" "$label, 2 x 1, static blocks" "${k}11"
done
row s21 "uneven + rank 1 2x slower, 2 x 1 (ideal 1.5x)" u11
row s21s "uneven + rank 1 2x slower, 2 x 1, static blocks" u11
share() { ratio "$(ratio "$(rate "$1")" "$(rate "$2")")" "$3"; }
echo
echo "share of the ideal speed-up on 2 workers (ideal 2x; 1.5x with rank 1 2x slower):"
echo "  fixed work: 2 x 1 $(share w21 w11 2), 1 x 2 $(share w12 w11 2), static 2 x 1 $(share w21s w11 2)"
echo "  uneven cost: 2 x 1 $(share u21 u11 2), 1 x 2 $(share u12 u11 2), static 2 x 1 $(share u21s u11 2)"
echo "  uneven + unequal workers: dynamic $(share s21 u11 1.5), static $(share s21s u11 1.5) (target >= 0.85)"
echo "  loaded: 2 ranks / 2 threads = $(ratio "$(rate l21)" "$(rate l12)") (target >= 0.90); static 2 ranks / 2 threads = $(ratio "$(rate l21s)" "$(rate l12)")"
echo
echo "(wait rN: median share of the wall time rank N was idle, from mpi_toy's rank_eval_comm_wait_seconds;"
echo " taken: median chunks rank 0 took back from rank 1's queue per run; the cheap runs' advice:"
grep -h '^advice' "$TMP"/c21.adv 2>/dev/null | sort | uniq -c | head -3
echo ")"
exit 0
