#!/usr/bin/env bash
# Scaling on this machine with fixed-CPU-work models (mpi_toy's calibrated loop,
# not a wall-clock busy-wait): ranks x threads, uneven cost (10x spread with
# x[0]), unequal workers (rank 1 twice as slow), a cheap model, and a loaded
# node (one CPU-bound process beside the job). Every layout is run REPEATS times,
# interleaved, and the median is printed, so that ratios come from one run.
#
#   WALKERS [64] STEPS [60] WORK_US [200] REPEATS [3] BIN [a release build of mpi_toy]
#   BEFORE_BIN=path/to/older/mpi_toy   adds its rows (e.g. a build of an older commit)
#   PRIORITY=1   on a machine shared with other jobs (Linux, root): run in an
#                autogroup of its own at nice -20, and the runs without the CPU hog
#                under SCHED_FIFO (chrt -f 5), so that the others' load disturbs
#                less; the loaded-node runs stay under the normal scheduler (CFS),
#                job and hog alike, since that is what the test is about
set -uo pipefail
cd "$(dirname "$0")/../.."
source launch/mpi-env
WALKERS=${WALKERS:-64}; STEPS=${STEPS:-60}; WORK_US=${WORK_US:-200}; REPEATS=${REPEATS:-3}
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
# name bin ranks threads args...  -> appends "steps/s wait0 wait1" to $TMP/name
one() {
  local name=$1 bin=$2 n=$3 t=$4; shift 4
  local pfx=("${RT[@]}"); [ -n "$HOG" ] && pfx=()
  if "${pfx[@]}" "${MPIRUN[@]}" -n "$n" "$bin" --threads "$t" --walkers "$WALKERS" "$@" >"$TMP/o" 2>"$TMP/e"; then
    echo "$(field steps_per_second "$TMP/o") $(field rank_eval_comm_wait_seconds "$TMP/o") $(field wall_seconds "$TMP/o")" >>"$TMP/$name"
  else
    echo "run $name failed: $(tail -2 "$TMP/e")" >&2
  fi
}
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }
rate() { cut -d' ' -f1 "$TMP/$1" | med; }
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
for rep in $(seq 1 "$REPEATS"); do
  for b in now ${BEFORE_BIN:+before}; do
    bin=$BIN; [ "$b" = before ] && bin=$BEFORE_BIN
    one "$b.w11" "$bin" 1 1 "${W[@]}"; one "$b.w21" "$bin" 2 1 "${W[@]}"; one "$b.w12" "$bin" 1 2 "${W[@]}"
    one "$b.u11" "$bin" 1 1 "${U[@]}"; one "$b.u21" "$bin" 2 1 "${U[@]}"; one "$b.u12" "$bin" 1 2 "${U[@]}"
    one "$b.s21" "$bin" 2 1 "${S[@]}"
    one "$b.c11" "$bin" 1 1 "${C[@]}"; one "$b.c21" "$bin" 2 1 "${C[@]}"; one "$b.c12" "$bin" 1 2 "${C[@]}"
    hog_on
    one "$b.l11" "$bin" 1 1 "${W[@]}"; one "$b.l21" "$bin" 2 1 "${W[@]}"; one "$b.l12" "$bin" 1 2 "${W[@]}"
    hog_off
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" 'BEGIN { printf "%.0f %%", 100 * a }'; }
for b in now ${BEFORE_BIN:+before}; do
  echo
  echo "== $b ($( [ "$b" = now ] && echo "$BIN" || echo "$BEFORE_BIN"))"
  printf '%-44s %10s %9s %9s %9s\n' "model, layout (ranks x threads)" "steps/s" "speedup" "wait r0" "wait r1"
  for g in "w:fixed work ${WORK_US} us" "u:uneven cost (10x spread)" "c:cheap (5 us)" "l:loaded node (+1 CPU hog)"; do
    k=${g%%:*}; label=${g#*:}; base=$(rate "$b.${k}11")
    for lay in 11 21 12; do
      [ -s "$TMP/$b.$k$lay" ] || continue
      r=$(rate "$b.$k$lay")
      printf '%-44s %10.1f %8sx %9s %9s\n' "$label, ${lay:0:1} x ${lay:1:1}" "$r" "$(ratio "$r" "$base")" \
        "$(pct "$(waitshare "$b.$k$lay" 0)")" "$( [ "$lay" = 21 ] && pct "$(waitshare "$b.$k$lay" 1)" || echo -)"
    done
  done
  if [ -s "$TMP/$b.s21" ]; then
    r=$(rate "$b.s21"); base=$(rate "$b.u11")
    printf '%-44s %10.1f %8sx %9s %9s\n' "uneven cost, rank 1 2x slower, 2 x 1" "$r" "$(ratio "$r" "$base")" \
      "$(pct "$(waitshare "$b.s21" 0)")" "$(pct "$(waitshare "$b.s21" 1)")"
    echo "  (ideal for that one: 1 + 1/2 = 1.5x; share of ideal $(ratio "$(ratio "$r" "$base")" 1.5))"
  fi
  echo "  loaded: 2 ranks / 2 threads = $(ratio "$(rate "$b.l21")" "$(rate "$b.l12")") (target >= 0.90)"
done
echo
echo "(wait rN: share of the wall time rank N was idle, from mpi_toy's rank_eval_comm_wait_seconds;"
echo " 'before' binaries without it show nan)"
exit 0
