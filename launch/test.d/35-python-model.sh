#!/usr/bin/env bash
# A Python model ([model] name = "python", tests/data/toy_python.toml) under MPI:
# every rank evaluates it in its own worker interpreters, and the chain is the same
# as without mpirun (data and failure counts), also with a hanging model stopped by
# its timeout; kill -9 of a rank mid-run, then resume on another layout, gives the
# uninterrupted chain; no worker process outlives its run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source launch/mpi-env
PY="${CLIMCAL_PYTHON:-python3}"
if ! "$PY" -c "import numpy" 2>/dev/null; then
  echo "35-python-model: $PY with numpy is needed (launch/install-deps)" >&2
  exit 1
fi

cargo build --quiet --bin climcal
CLI=target/debug/climcal
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp tests/data/toy_python.toml tests/data/toy_python_model.py tests/data/toy_linear.csv "$TMP/"
fail=0
data() { h5dump -d mcmc/chain -d mcmc/log_prob "$1" | tail -n +2; }
# The run's total (top level of the JSON; rank_times rows carry their own "failures").
failures() { "$CLI" info "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["failures"])'; }
iteration() { h5dump -a mcmc/iteration "$1" 2>/dev/null | grep -A1 "DATA {" | tail -1 | sed -E 's/.*: *([0-9]+).*/\1/' || true; }
workers() { { pgrep -f "climcal's Python-model worker" || true; } | wc -l; }
run() { # name timeout command...
  local name=$1 secs=$2; shift 2
  local rc=0
  (cd "$TMP" && timeout "$secs" "$@") >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" != 0 ]; then echo "  FAIL $name: exit $rc; stderr:"; tail -5 "$TMP/$name.err"; fail=1; fi
}
same() { # label a.h5 b.h5
  local fa fb
  fa=$(failures "$TMP/$2" || echo missing); fb=$(failures "$TMP/$3" || echo missing)
  if cmp -s <(data "$TMP/$2") <(data "$TMP/$3") && [ "$fa" == "$fb" ] && [ "$fa" != missing ] && [ "$fa" != 0 ]; then
    echo "  ok   $1: same data, $fa failed evaluations on both"
  else
    echo "  FAIL $1: data differ or failures $fa vs $fb"; fail=1
  fi
}
CLI="$(pwd)/$CLI"
before=$(workers)

echo "-- raising/NaN Python model: mpirun -n 2 gives the chain of one process"
run ref 120 "$CLI" run toy_python.toml -o ref.h5 -q --threads 1
run n2 120 "${MPIRUN[@]}" -n 2 "$CLI" run toy_python.toml -o n2.h5 -q --threads 1
same "mpirun -n 2 x 1 thread" ref.h5 n2.h5
run n2t2 120 "${MPIRUN[@]}" -n 2 "$CLI" run toy_python.toml -o n2t2.h5 -q --threads 2
same "mpirun -n 2 x 2 threads" ref.h5 n2t2.h5

echo "-- hanging Python model with timeout_seconds = 2 under mpirun -n 2"
sed -e 's/function = "line"/function = "line_hang", timeout_seconds = 2/' -e 's/n_steps = 40/n_steps = 10/' "$TMP/toy_python.toml" >"$TMP/hang.toml"
run hang_ref 300 "$CLI" run hang.toml -o hang_ref.h5 -q --threads 2
run hang_n2 300 "${MPIRUN[@]}" -n 2 "$CLI" run hang.toml -o hang_n2.h5 -q --threads 1
same "hanging model, mpirun -n 2" hang_ref.h5 hang_n2.h5

echo "-- kill -9 of rank 1 mid-run (a 2 ms Python model), resume on 2 ranks x 2 threads: the uninterrupted chain"
sed -e 's/function = "line"/function = "line_slow"/' -e 's/n_steps = 40/n_steps = 200/' "$TMP/toy_python.toml" >"$TMP/slow.toml"
run slow_ref 300 "$CLI" run slow.toml -o slow_ref.h5 -q --threads 2
(cd "$TMP" && exec "${MPIRUN[@]}" -n 2 "$CLI" run slow.toml -o k.h5 -q --threads 1) >"$TMP/k.log" 2>&1 &
mp=$!
killed=""
for _ in $(seq 1 240); do # until the second checkpoint (iteration 40) is committed
  [ "$(iteration "$TMP/k.h5")" -ge 40 ] 2>/dev/null && break
  sleep 0.25
done
for p in $(pgrep -P "$mp"); do
  if grep -qxz 'OMPI_COMM_WORLD_RANK=1' "/proc/$p/environ" 2>/dev/null; then kill -KILL "$p"; killed=$p; fi
done
rc=0
wait "$mp" || rc=$?
if [ -n "$killed" ] && [ "$rc" != 0 ]; then echo "  ok   rank 1 killed, job aborted (mpirun rc $rc)"; else echo "  FAIL kill: killed='$killed' rc=$rc"; fail=1; fi
it=$(iteration "$TMP/k.h5")
if [ "${it:-0}" -gt 0 ] && [ "${it:-0}" -lt 200 ]; then echo "  ok   checkpoint survived at iteration $it"; else echo "  FAIL checkpoint iteration '$it'"; fail=1; fi
run resume 300 "${MPIRUN[@]}" -n 2 "$CLI" resume k.h5 -q --threads 2
same "killed and resumed" slow_ref.h5 k.h5

sleep 1
after=$(workers)
if [ "$after" -le "$before" ]; then echo "  ok   no Python worker left running"; else echo "  FAIL $((after - before)) Python worker(s) left running"; fail=1; fi

if [ "$fail" != 0 ]; then echo "35-python-model: FAILED"; exit 1; fi
echo "35-python-model: all passed"
