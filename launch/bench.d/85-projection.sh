#!/usr/bin/env bash
# climcal project: projections per second for 10 000 posterior draws × the five
# built-in AR6 SSP scenarios to 2100, end to end (read the chain, rebuild the model,
# run, write the HDF5 file of per-draw series), on 1 thread and on all cores; then
# the core alone (examples/bench_projection.rs, no file). The chain: the HadCRUT5
# run file, 64 walkers × 1 600 steps stored every 10th (10 240 samples).
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/climcal
[ -x "$bin" ] && [ -x target/release/examples/bench_projection ] || cargo build --release --quiet --bin climcal --example bench_projection 2>&1 | tail -1
tmp=$(mktemp -d)
cfg="cluster-examples/.bench-proj-$$.toml"
sed -e 's/^thin = 48/thin = 10/' cluster-examples/two-layer-hadcrut5.toml >"$cfg"
trap 'rm -rf "$tmp" "$cfg"' EXIT
"$bin" run "$cfg" --steps 1600 -q -o "$tmp/chain.h5" || { echo "calibration failed"; exit 1; }
cores=$(nproc)
printf '%-8s %9s %14s %13s %10s %12s\n' threads wall_s projections/s per_core_/s file_MB peak_RSS_MB
for t in 1 "$cores"; do
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" project "$tmp/chain.h5" -s ssp119 -s ssp126 -s ssp245 -s ssp370 -s ssp585 \
    --draws 10000 --threads "$t" -q --force -o "$tmp/p.h5" >"$tmp/out" 2>"$tmp/err" || { echo "project failed:"; tail -3 "$tmp/err"; continue; }
  read -r wall rss <"$tmp/time"
  size=$(stat -c %s "$tmp/p.h5")
  python3 -c "t=$t;w=$wall;n=50000;print(f'{t:<8} {w:9.2f} {n/w:14.0f} {n/w/t:13.0f} {$size/1e6:10.1f} {$rss/1024:12.1f}')"
done
target/release/examples/bench_projection
echo "(machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the end)"
