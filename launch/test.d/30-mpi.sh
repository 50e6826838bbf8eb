#!/usr/bin/env bash
# MPI tests: the chain is bitwise identical for mpirun -n 1, 2, 4 with 1 or 2 rayon
# threads per rank and without mpirun; a model that panics/returns NaN on some
# ranks gives -inf (counted) and never hangs; Ctrl-C/SIGTERM to mpirun stops the
# run cleanly after the current step; a launcher from another MPI is refused; an
# external-program model (with timeouts) gives the same chain under mpirun.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mpirun >/dev/null; then
  echo "30-mpi: mpirun not found (install openmpi-bin via launch/install-deps)" >&2
  exit 1
fi
source launch/mpi-env

cargo build --quiet --example mpi_toy
BIN=target/debug/examples/mpi_toy
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # name expected actual
  if [ "$2" == "$3" ]; then echo "  ok   $1"; else echo "  FAIL $1: expected '$2', got '$3'"; fail=1; fi
}
field() { { grep -m1 "^$1 " "$2" 2>/dev/null || true; } | cut -d' ' -f2-; }
run() { # out-name timeout-seconds command...
  local name=$1 secs=$2; shift 2
  local rc=0
  timeout "$secs" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "  FAIL $name: exit $rc (124 = timeout: a hang); stderr:"; tail -5 "$TMP/$name.err"; fail=1
  fi
}

echo "-- determinism across layouts (uneven-cost toy model: fixed CPU work spread 10x with x[0], rank 1 3x slower; 32 walkers x 4 params, 150 steps)"
ARGS=(--steps 150 --walkers 32 --dim 4 --seed 7 --spin-iters 2000 --spread 10 --slow-rank 1 --slow-factor 3)
run serial 60 "$BIN" --exec serial "${ARGS[@]}" --out "$TMP/serial.bin"
ref=$(field hash "$TMP/serial.out")
run rayon2 60 "$BIN" --exec rayon --threads 2 "${ARGS[@]}"
check "rayon 2 threads (no mpirun)" "$ref" "$(field hash "$TMP/rayon2.out")"
run singleton 60 "$BIN" "${ARGS[@]}"
check "MPI singleton (no mpirun)" "$ref" "$(field hash "$TMP/singleton.out")"
for n in 1 2 4; do
  for t in 1 2; do
    run "n${n}t${t}" 120 "${MPIRUN[@]}" -n "$n" "$BIN" --threads "$t" "${ARGS[@]}" --out "$TMP/n${n}t${t}.bin"
    check "mpirun -n $n, $t thread(s)/rank: hash" "$ref" "$(field hash "$TMP/n${n}t${t}.out")"
    if cmp -s "$TMP/serial.bin" "$TMP/n${n}t${t}.bin"; then echo "  ok   mpirun -n $n, $t thread(s)/rank: bytes"; else echo "  FAIL bytes differ"; fail=1; fi
    check "mpirun -n $n layout" "ranks=$n threads_per_rank=$t" "$(field layout "$TMP/n${n}t${t}.out")"
  done
done

run n2static 120 "${MPIRUN[@]}" -n 2 "$BIN" --threads 1 --static "${ARGS[@]}"
check "mpirun -n 2, equal static blocks (--static): hash" "$ref" "$(field hash "$TMP/n2static.out")"
# Chunks rank 0 took back from a worker's queue (timing-dependent, so reported, not required).
echo "  info chunks taken back by rank 0 in the runs above: $(for f in "$TMP"/n[124]t[12].out; do field taken_back "$f"; done | awk '{ s += $1 } END { print s + 0 }')"

echo "-- determinism across layouts with a mixture of moves (DE, DE-snooker, DIME, Gaussian sequential; 60 steps)"
MARGS=(--steps 60 --walkers 32 --dim 4 --seed 7 --spin-iters 2000 --spread 10
  --moves '[{"kind":"de","weight":0.4},{"kind":"de_snooker","weight":0.2},{"kind":"dime","weight":0.2},{"kind":"gaussian","cov":0.1,"mode":"sequential","factor":2.0,"weight":0.2}]')
run mserial 60 "$BIN" --exec serial "${MARGS[@]}"
mref=$(field hash "$TMP/mserial.out")
for n in 2 4; do
  run "mn$n" 120 "${MPIRUN[@]}" -n "$n" "$BIN" --threads 1 "${MARGS[@]}"
  check "moves: mpirun -n $n hash" "$mref" "$(field hash "$TMP/mn$n.out")"
done
if [ -z "$mref" ]; then echo "  FAIL moves: the serial run printed no hash"; fail=1; fi

echo "-- more ranks than points per half-step (4 walkers: 2 per half, 4 ranks)"
run small_serial 60 "$BIN" --exec serial --walkers 4 --dim 2 --steps 50 --spin-iters 20000
run small_n4 120 "${MPIRUN[@]}" -n 4 "$BIN" --walkers 4 --dim 2 --steps 50 --spin-iters 20000
check "4 ranks, 2 points per batch" "$(field hash "$TMP/small_serial.out")" "$(field hash "$TMP/small_n4.out")"

echo "-- faults: model panics / returns NaN for x[0] > 0.8 (on whichever rank evaluates it)"
# The model costs some CPU work: a batch of a ~0 us model is not worth a message
# and rank 0 keeps it, so rank 1 would never see a failing point.
for f in panic nan; do
  FARGS=(--steps 100 --walkers 32 --dim 3 --fault "$f" --fail-above 0.8 --spin-iters 2000)
  run "f_${f}_serial" 60 "$BIN" --exec serial "${FARGS[@]}"
  run "f_${f}_n2" 120 "${MPIRUN[@]}" -n 2 "$BIN" --threads 2 "${FARGS[@]}"
  run "f_${f}_n4" 120 "${MPIRUN[@]}" -n 4 "$BIN" "${FARGS[@]}"
  sref=$(field hash "$TMP/f_${f}_serial.out")
  nfail=$(field failures "$TMP/f_${f}_serial.out")
  [ "${nfail:-0}" -gt 0 ] && echo "  ok   $f: serial run counted $nfail failures" || { echo "  FAIL $f: no failures counted"; fail=1; }
  for n in 2 4; do
    check "$f, -n $n: same chain as serial" "$sref" "$(field hash "$TMP/f_${f}_n$n.out")"
    check "$f, -n $n: same failure count" "$nfail" "$(field failures "$TMP/f_${f}_n$n.out")"
  done
  # rank_failures "0:a/b 1:c/d": rank 1 must have hit (and survived) failures.
  r1=$(field rank_failures "$TMP/f_${f}_n2.out" | tr ' ' '\n' | grep '^1:' | cut -d: -f2 | cut -d/ -f1 || true)
  [ "${r1:-0}" -gt 0 ] && echo "  ok   $f: rank 1 caught $r1 failures" || { echo "  FAIL $f: rank 1 saw no failures"; fail=1; }
done

echo "-- SIGTERM to mpirun: rank 0 finishes the step, releases the workers, exits 0"
"${MPIRUN[@]}" -n 2 "$BIN" --signals --steps 100000 --step-sleep-ms 5 >"$TMP/sig.out" 2>"$TMP/sig.err" &
pid=$!
sleep 3
kill -TERM "$pid"
rc=0
for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "  FAIL SIGTERM: mpirun still running after 30 s"; kill -KILL "$pid"; fail=1
else
  wait "$pid" || rc=$?
  check "SIGTERM: outcome" "interrupted" "$(field outcome "$TMP/sig.out")"
  # mpirun itself reports 1 after it was signalled, even when every rank exits 0;
  # what matters is that no rank was killed.
  if grep -q "exited on signal\|killed" "$TMP/sig.err"; then echo "  FAIL SIGTERM: a rank was killed (rc $rc)"; fail=1; else echo "  ok   SIGTERM: no rank killed (mpirun rc $rc)"; fi
  grep -q "^worker 1:" "$TMP/sig.err" && echo "  ok   SIGTERM: worker released cleanly" || { echo "  FAIL worker did not report"; fail=1; }
fi

echo "-- a launcher from another MPI is refused (simulated: PMI_SIZE=4 on a singleton)"
rc=0
PMI_SIZE=4 PMI_RANK=0 timeout 60 "$BIN" --steps 5 >"$TMP/foreign.out" 2>"$TMP/foreign.err" || rc=$?
check "foreign launcher: exit code" "2" "$rc"
grep -q "different MPI" "$TMP/foreign.err" && echo "  ok   foreign launcher: message names the cause" || { echo "  FAIL message: $(cat "$TMP/foreign.err")"; fail=1; }

echo "-- climcal run/resume under mpirun: HDF5 files identical in data (mcmc/chain, mcmc/log_prob)"
echo "   (uneven-cost model: 300 us sleep + 100-1000 us of CPU work growing with a)"
cargo build --quiet --bin climcal
CLI=target/debug/climcal
cat >"$TMP/g.toml" <<'TOML'
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 3.0 }
[parameters.b]
prior = { dist = "uniform", lower = -5.0, upper = 5.0 }
[parameters.c]
prior = { dist = "log_normal", mu = 0.0, sigma = 1.0 }
transform = "log"
[model]
name = "gaussian"
options = { mean = [1.0, -2.0, 3.0], std = [1.0, 2.0, 0.5], sleep_us = 300, work_us = 100, work_spread = 10 }
[sampler]
n_walkers = 16
n_steps = 200
seed = 42
[output]
checkpoint_every = 20
TOML
data() { h5dump -d mcmc/chain -d mcmc/log_prob "$1" | tail -n +2; }  # drop the line naming the file
iteration() { h5dump -a mcmc/iteration "$1" 2>/dev/null | grep -A1 "DATA {" | tail -1 | sed -E 's/.*: *([0-9]+).*/\1/' || true; }
run cli_ref 120 "$CLI" run "$TMP/g.toml" -o "$TMP/ref.h5" -q --threads 4
data "$TMP/ref.h5" >"$TMP/ref.txt"
for lay in "2 1" "4 2"; do
  read -r n t <<<"$lay"
  run "cli_n$n" 300 "${MPIRUN[@]}" -n "$n" "$CLI" run "$TMP/g.toml" -o "$TMP/n$n.h5" -q --threads "$t"
  if cmp -s "$TMP/ref.txt" <(data "$TMP/n$n.h5"); then echo "  ok   climcal run, mpirun -n $n x $t threads: same data as no mpirun"; else echo "  FAIL climcal run -n $n: data differ"; fail=1; fi
done
"$CLI" info "$TMP/n4.h5" >"$TMP/info.txt"
if grep -q "layout: 4 MPI rank(s) × 2 thread(s) per rank; last run: evaluating" "$TMP/info.txt"; then
  echo "  ok   climcal info shows ranks, threads and eval/comm/wait"
else
  echo "  FAIL climcal info layout line: $(grep layout "$TMP/info.txt")"; fail=1
fi
# Per-rank split, stored by rank 0 at each checkpoint: 4 rows whose evaluations add
# up to every evaluation of the run (16 initial + 200 steps x 16 walkers).
evals=$("$CLI" info "$TMP/n4.h5" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["rank_times"]; print(len(r), sum(x["evaluations"] for x in r), min(x["evaluations"] for x in r) > 0)')
check "climcal info: per-rank times (ranks, evaluations, every rank evaluated)" "4 3216 True" "$evals"
if grep -q "^  rank 3 " "$TMP/info.txt"; then echo "  ok   climcal info prints the per-rank table"; else echo "  FAIL per-rank table: $(grep -A5 layout "$TMP/info.txt")"; fail=1; fi

echo "-- kill -9 of rank 1 mid-run: OpenMPI aborts the job, the checkpoint survives, resume on 4 ranks is identical"
"${MPIRUN[@]}" -n 2 "$CLI" run "$TMP/g.toml" -o "$TMP/k.h5" -q --threads 1 >"$TMP/k.log" 2>&1 &
mp=$!
killed=""
for _ in $(seq 1 120); do  # until the second checkpoint (iteration 40) is committed
  [ "$(iteration "$TMP/k.h5")" -ge 40 ] 2>/dev/null && break
  sleep 0.5
done
for p in $(pgrep -P "$mp"); do
  if grep -qxz 'OMPI_COMM_WORLD_RANK=1' "/proc/$p/environ" 2>/dev/null; then kill -KILL "$p"; killed=$p; fi
done
rc=0
wait "$mp" || rc=$?
if [ -n "$killed" ] && [ "$rc" != 0 ]; then echo "  ok   rank 1 killed, job aborted (mpirun rc $rc)"; else echo "  FAIL kill: killed='$killed' rc=$rc"; fail=1; fi
it=$(iteration "$TMP/k.h5")
if [ "${it:-0}" -gt 0 ] && [ "${it:-0}" -lt 200 ]; then echo "  ok   checkpoint survived at iteration $it"; else echo "  FAIL checkpoint iteration '$it'"; fail=1; fi
run cli_resume 300 "${MPIRUN[@]}" -n 4 "$CLI" resume "$TMP/k.h5" -q --threads 1
if cmp -s "$TMP/ref.txt" <(data "$TMP/k.h5"); then echo "  ok   resumed on 4 ranks: same data as the uninterrupted run"; else echo "  FAIL resumed chain differs"; fail=1; fi

echo "-- SIGTERM to mpirun running climcal: checkpoint and clean exit; resume without mpirun is identical"
"${MPIRUN[@]}" -n 2 "$CLI" run "$TMP/g.toml" -o "$TMP/t.h5" -q --threads 1 >"$TMP/t.log" 2>&1 &
mp=$!
for _ in $(seq 1 120); do
  [ "$(iteration "$TMP/t.h5")" -ge 20 ] 2>/dev/null && break
  sleep 0.5
done
kill -TERM "$mp"
wait "$mp" || true
if grep -q "interrupted at iteration" "$TMP/t.log" && ! grep -q "exited on signal" "$TMP/t.log"; then
  echo "  ok   SIGTERM: rank 0 checkpointed at iteration $(iteration "$TMP/t.h5"), no rank killed"
else
  echo "  FAIL SIGTERM: $(tail -3 "$TMP/t.log")"; fail=1
fi
run cli_resume_t 120 "$CLI" resume "$TMP/t.h5" -q --threads 2
if cmp -s "$TMP/ref.txt" <(data "$TMP/t.h5"); then echo "  ok   resumed without mpirun: same data as the uninterrupted run"; else echo "  FAIL resumed chain differs"; fail=1; fi

echo "-- a bad run file under mpirun: exit 2, no hang"
rc=0
timeout 120 "${MPIRUN[@]}" -n 2 "$CLI" run "$TMP/nonexistent.toml" -q >"$TMP/bad.out" 2>&1 || rc=$?
if [ "$rc" == 2 ]; then echo "  ok   bad run file: exit 2"; else echo "  FAIL bad run file: rc $rc"; fail=1; fi

echo "-- an external program as the model under mpirun (timeouts where it hangs): same data, same failures"
mkdir -p "$TMP/cmd" && cp tests/data/toy_linear.csv tests/data/toy_command.toml tests/data/toy_command_model.sh "$TMP/cmd/"
# The run's total (top level of the JSON; rank_times rows carry their own "failures").
failures() { "$CLI" info "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["failures"])'; }
run cmd_ref 120 "$CLI" run "$TMP/cmd/toy_command.toml" -o "$TMP/cmd/ref.h5" -q
run cmd_n2 120 "${MPIRUN[@]}" -n 2 "$CLI" run "$TMP/cmd/toy_command.toml" -o "$TMP/cmd/n2.h5" -q --threads 1
f_ref=$(failures "$TMP/cmd/ref.h5" || echo missing); f_n2=$(failures "$TMP/cmd/n2.h5" || echo missing)
if cmp -s <(data "$TMP/cmd/ref.h5") <(data "$TMP/cmd/n2.h5") && [ "$f_ref" == "$f_n2" ] && [ "${f_ref:-0}" != 0 ] && [ "$f_ref" != missing ]; then
  echo "  ok   command model, mpirun -n 2: same data, $f_ref timed-out evaluations on both"
else
  echo "  FAIL command model under mpirun: failures $f_ref vs $f_n2 or data differ"; fail=1
fi

if [ "$fail" != 0 ]; then echo "30-mpi: FAILED"; exit 1; fi
echo "30-mpi: all passed"
