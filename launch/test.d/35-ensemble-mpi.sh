#!/usr/bin/env bash
# climcal ensemble under MPI: the ensemble FILE (cmp, byte for byte: members,
# per-variable log-likelihoods, RMSEs, outputs, filter, weights, the constrained
# draw and its one-step chain, every attribute and every byte of HDF5's own
# bookkeeping) is the same without mpirun, with mpirun -n 1 and with -n 2, for 1
# or 2 threads per rank; kill -9 of the whole job at several moments (during the
# members and during the constraint stage), each time resumed on another layout,
# gives the same file; so does re-applying the constraints to a finished file.
# The same holds for a run file without constraints (the members file as
# streamed, no final rewrite). Short: 4 000 two-layer members.
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
fail=0
ARGS=(-n 4000 --batch 300 -q)
run() { # name timeout command...
  local name=$1 secs=$2; shift 2
  local rc=0
  timeout "$secs" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  if [ "$rc" != 0 ]; then echo "  FAIL $name: exit $rc; stderr:"; tail -5 "$TMP/$name.err"; fail=1; fi
}
same() { # label reference file
  if cmp -s "$2" "$3"; then
    echo "  ok   $1: byte-identical ($(stat -c %s "$3") bytes)"
  else
    echo "  FAIL $1: files differ: $(cmp "$2" "$3" 2>&1 | head -1)"; fail=1
  fi
}
committed() {
  h5dump -a /ensemble/committed "$1" 2>/dev/null | grep -A1 "DATA {" | tail -1 | sed -E 's/.*: *([0-9]+).*/\1/' || true
}
# The constraints of the example need more members than this test runs: a draw of
# 300 without a minimum effective sample size. The second run file has no
# constraints at all. Both next to the example, so that its data paths resolve.
CON="cluster-examples/.ens-mpi-$$.toml"
RAW="cluster-examples/.ens-mpi-raw-$$.toml"
sed -e 's/^members = 841/members = 300/' -e 's/^min_ess = 841//' "$CFG" >"$CON"
sed '/^\[\[ensemble.filters\]\]/,$d' "$CFG" >"$RAW"
trap 'rm -rf "$TMP" "$CON" "$RAW"' EXIT

echo "-- same file without mpirun and with 1 and 2 ranks × 1 and 2 threads"
run ref 300 "$CLI" ensemble "$CON" "${ARGS[@]}" --threads 1 -o "$TMP/ref.h5"
[ "$(committed "$TMP/ref.h5")" = 4000 ] && h5dump -d /mcmc/chain "$TMP/ref.h5" >/dev/null \
  || { echo "  FAIL the reference holds no complete constrained ensemble"; fail=1; }
for lay in "1 2" "2 1" "2 2"; do
  read -r n t <<<"$lay"
  run "n${n}t${t}" 300 "${MPIRUN[@]}" -n "$n" "$CLI" ensemble "$CON" "${ARGS[@]}" --threads "$t" -o "$TMP/n${n}t${t}.h5"
  same "mpirun -n $n × $t thread(s) vs no mpirun" "$TMP/ref.h5" "$TMP/n${n}t${t}.h5"
done
grep -q '"ranks":2' "$TMP/n2t2.h5.log" || { echo "  FAIL the sidecar log does not record the layout"; fail=1; }

echo "-- re-applying the constraints to the finished file: same file"
cp "$TMP/ref.h5" "$TMP/again.h5"
run again 300 "$CLI" ensemble "$CON" "${ARGS[@]}" -o "$TMP/again.h5" --resume
same "constraints applied twice" "$TMP/ref.h5" "$TMP/again.h5"

# kill -9 the job (mpirun and its ranks at once: mpirun cannot forward SIGKILL)
# once the file holds at least $2 committed members, or after $3 s.
kill_at() { # file min_committed max_seconds command...
  local f=$1 min=$2 secs=$3; shift 3
  "$@" >/dev/null 2>&1 &
  local pid=$! i
  for i in $(seq 1 $((secs * 50))); do
    c=$(committed "$f")
    [ -n "$c" ] && [ "$c" -ge "$min" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  local kids
  kids=$(pgrep -P "$pid" || true)
  kill -9 "$pid" $kids 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "  killed at $(committed "$f" || echo 0) committed members"
}

echo "-- kill -9 at several moments, each resumed on another layout: same file"
K="$TMP/k.h5"
kill_at "$K" 600 60 "${MPIRUN[@]}" -n 2 "$CLI" ensemble "$CON" "${ARGS[@]}" --threads 1 -o "$K"
kill_at "$K" 1800 60 "$CLI" ensemble "$CON" "${ARGS[@]}" --threads 2 -o "$K" --resume
kill_at "$K" 3300 60 "${MPIRUN[@]}" -n 2 "$CLI" ensemble "$CON" "${ARGS[@]}" --threads 2 -o "$K" --resume
# All members committed: a kill now lands in the constraint stage (or after it).
kill_at "$K" 4000 60 "$CLI" ensemble "$CON" "${ARGS[@]}" -o "$K" --resume
run resume 300 "$CLI" ensemble "$CON" "${ARGS[@]}" -o "$K" --resume
same "killed 4 times and resumed" "$TMP/ref.h5" "$K"

echo "-- a run file without constraints (the file as streamed): same file"
run raw1 300 "$CLI" ensemble "$RAW" "${ARGS[@]}" --threads 1 -o "$TMP/raw1.h5"
run raw2 300 "${MPIRUN[@]}" -n 2 "$CLI" ensemble "$RAW" "${ARGS[@]}" --threads 2 -o "$TMP/raw2.h5"
same "no constraints: mpirun -n 2 × 2 threads vs no mpirun" "$TMP/raw1.h5" "$TMP/raw2.h5"
R="$TMP/rk.h5"
kill_at "$R" 1500 60 "${MPIRUN[@]}" -n 2 "$CLI" ensemble "$RAW" "${ARGS[@]}" --threads 1 -o "$R"
run rawres 300 "$CLI" ensemble "$RAW" "${ARGS[@]}" -o "$R" --resume
same "no constraints: killed and resumed" "$TMP/raw1.h5" "$R"

[ "$fail" -eq 0 ] && echo "35-ensemble-mpi: all passed" || { echo "35-ensemble-mpi: FAILED"; exit 1; }
