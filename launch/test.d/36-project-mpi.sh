#!/usr/bin/env bash
# climcal project under MPI: the projection file's series, failure flags and draws
# are the same without mpirun and with mpirun -n 1 and -n 2 (1 or 2 threads per
# rank). Short: a 300-step HadCRUT5 chain, 2 000 draws × 2 scenarios.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mpirun >/dev/null || ! command -v h5dump >/dev/null; then
  echo "36-project-mpi: mpirun and h5dump are needed (launch/install-deps installs them)" >&2
  exit 1
fi
source launch/mpi-env
cargo build --quiet --bin climcal
CLI=target/debug/climcal
TMP=$(mktemp -d)
CFG="cluster-examples/.proj-mpi-$$.toml"
sed -e 's/^thin = 48/thin = 10/' cluster-examples/two-layer-hadcrut5.toml >"$CFG"
trap 'rm -rf "$TMP" "$CFG"' EXIT
fail=0
"$CLI" run "$CFG" --steps 300 -q -o "$TMP/chain.h5"
ARGS=(project "$TMP/chain.h5" -s ssp126 -s ssp370 --draws 2000 --batch 500 -q --force)
data() {
  h5dump -d /projection/parameters -d /projection/draw_index -d /projection/years \
    -d "/projection/ssp126/Surface Temperature" -d "/projection/ssp370/Ocean Heat Content" \
    -d "/projection/ssp370/Net Energy Imbalance" -d /projection/ssp126/failed -d /projection/ssp370/failed "$1" | tail -n +2
}
timeout 300 "$CLI" "${ARGS[@]}" --threads 1 -o "$TMP/ref.h5" >/dev/null
data "$TMP/ref.h5" >"$TMP/ref.txt"
[ "$(wc -l <"$TMP/ref.txt")" -gt 1000 ] || { echo "  FAIL h5dump of the reference is incomplete"; fail=1; }
for lay in "1 2" "2 1" "2 2"; do
  read -r n t <<<"$lay"
  if timeout 300 "${MPIRUN[@]}" -n "$n" "$CLI" "${ARGS[@]}" --threads "$t" -o "$TMP/n$n.h5" >/dev/null 2>"$TMP/err" &&
    cmp -s "$TMP/ref.txt" <(data "$TMP/n$n.h5"); then
    echo "  ok   mpirun -n $n × $t thread(s): same projections as without mpirun"
  else
    echo "  FAIL mpirun -n $n × $t thread(s)"; tail -3 "$TMP/err"; fail=1
  fi
done
[ "$fail" -eq 0 ] && echo "36-project-mpi: all passed" || { echo "36-project-mpi: FAILED"; exit 1; }
