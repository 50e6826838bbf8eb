#!/usr/bin/env bash
# climcal ensemble under MPI: the ensemble file (members, per-variable
# log-likelihoods, RMSEs, outputs, filter, weights, the constrained draw and its
# one-step chain) holds the same data without mpirun, with mpirun -n 1 and with
# -n 2, for 1 or 2 threads per rank; kill -9 of the whole job mid-run, then a
# resume on another layout, gives the same data too. Short: 4 000 two-layer members.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mpirun >/dev/null || ! command -v h5dump >/dev/null; then
  echo "35-ensemble-mpi: mpirun and h5dump are needed (launch/install-deps installs them)" >&2
  exit 1
fi
source launch/mpi-env
cargo build --quiet --bin climcal
CLI=target/debug/climcal
CFG=cluster-examples/two-layer-fair-style.toml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
ARGS=(-n 4000 --batch 300 -q)
# Every dataset of the file except run records (wall time, ranks, threads).
data() {
  h5dump -a /ensemble/committed -a /ensemble/failures \
    -d /ensemble/parameters -d /ensemble/loglike -d /ensemble/loglike_by_variable -d /ensemble/rmse -d /ensemble/outputs -d /ensemble/derived \
    -d /ensemble/constraints/passed -d /ensemble/constraints/weights -d /ensemble/constraints/drawn \
    -d /mcmc/chain -d /mcmc/log_prob -d /mcmc/blobs "$1" | tail -n +2
}
run() { # name timeout command...
  local name=$1 secs=$2; shift 2
  local rc=0
  timeout "$secs" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" != 0 ]; then echo "  FAIL $name: exit $rc; stderr:"; tail -5 "$TMP/$name.err"; fail=1; fi
}
# The constraints of the example need more members than this test runs: a draw of
# 300 without a minimum effective sample size.
sed -e 's/^members = 841/members = 300/' -e 's/^min_ess = 841//' "$CFG" >"cluster-examples/.ens-mpi-$$.toml"
CFG="cluster-examples/.ens-mpi-$$.toml"
trap 'rm -rf "$TMP" "$CFG"' EXIT

echo "-- same ensemble file without mpirun and with 1 and 2 ranks"
run ref 300 "$CLI" ensemble "$CFG" "${ARGS[@]}" --threads 1 -o "$TMP/ref.h5"
data "$TMP/ref.h5" >"$TMP/ref.txt"
grep -q '"committed"' "$TMP/ref.txt" && [ "$(wc -l <"$TMP/ref.txt")" -gt 1000 ] || { echo "  FAIL h5dump of the reference is incomplete"; fail=1; }
for lay in "1 2" "2 1" "2 2"; do
  read -r n t <<<"$lay"
  run "n${n}t${t}" 300 "${MPIRUN[@]}" -n "$n" "$CLI" ensemble "$CFG" "${ARGS[@]}" --threads "$t" -o "$TMP/n${n}t${t}.h5"
  if cmp -s "$TMP/ref.txt" <(data "$TMP/n${n}t${t}.h5"); then
    echo "  ok   mpirun -n $n × $t thread(s): same data as without mpirun"
  else
    echo "  FAIL mpirun -n $n × $t thread(s): data differ"; fail=1
  fi
done

echo "-- kill -9 of the MPI job mid-run, resume without mpirun: same data"
"${MPIRUN[@]}" -n 2 "$CLI" ensemble "$CFG" -n 4000 --batch 100 -q --threads 1 -o "$TMP/k.h5" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  c=$(h5dump -a /ensemble/committed "$TMP/k.h5" 2>/dev/null | grep -A1 "DATA {" | tail -1 | sed -E 's/.*: *([0-9]+).*/\1/' || true)
  [ -n "$c" ] && [ "$c" -ge 500 ] && break
  sleep 0.05
done
# SIGKILL to mpirun and its ranks at once (mpirun cannot forward a SIGKILL).
kids=$(pgrep -P "$pid" || true)
kill -9 "$pid" $kids 2>/dev/null || true
wait "$pid" 2>/dev/null || true
c=$(h5dump -a /ensemble/committed "$TMP/k.h5" 2>/dev/null | grep -A1 "DATA {" | tail -1 | sed -E 's/.*: *([0-9]+).*/\1/' || echo 0)
echo "  killed at $c committed members"
run resume 300 "$CLI" ensemble "$CFG" -n 4000 --batch 100 -q -o "$TMP/k.h5" --resume
# The resumed file was written in batches of 100: compare data, not batch layout.
if cmp -s "$TMP/ref.txt" <(data "$TMP/k.h5"); then echo "  ok   resumed: same data as the uninterrupted run"; else echo "  FAIL resumed data differ"; fail=1; fi

[ "$fail" -eq 0 ] && echo "35-ensemble-mpi: all passed" || { echo "35-ensemble-mpi: FAILED"; exit 1; }
