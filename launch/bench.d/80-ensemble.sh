#!/usr/bin/env bash
# climcal ensemble: the fair-style two-layer run file (two-layer model from 1750,
# HadCRUT5 + OHC likelihoods, RMSE filter, histogram weighting, draw of 841) at
# N = 100 000 and 1 000 000 members (BENCH_ENSEMBLE_N overrides the list): the
# evaluation (run file without its constraints) on 1 and all threads: wall time,
# members/s and per core, file size and peak RSS (GNU time), which should not grow
# with N; then the constraint stage alone on the finished file (--resume), which
# holds O(N) arrays (weights, filter flags, bin codes: ~50 bytes per member).
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/climcal
cargo build --release --quiet --bin climcal 2>&1 | tail -1
cfg=cluster-examples/two-layer-fair-style.toml
tmp=$(mktemp -d)
# The evaluation alone: the same run file without its constraints (next to it, so
# that its data paths resolve).
eval_cfg="cluster-examples/.bench-eval-$$.toml"
sed '/^\[\[ensemble.filters\]\]/,$d' "$cfg" >"$eval_cfg"
trap 'rm -rf "$tmp" "$eval_cfg"' EXIT
cores=$(nproc)
ns=${BENCH_ENSEMBLE_N:-"100000 1000000"}
printf '%-9s %-7s %9s %11s %13s %10s %12s\n' members threads wall_s members/s per_core_/s file_MB peak_RSS_MB
for n in $ns; do
  for t in 1 "$cores"; do
    out="$tmp/e$n-$t.h5"
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" ensemble "$eval_cfg" -n "$n" --threads "$t" -q -o "$out" --force 2>"$tmp/err" || { echo "run failed:"; tail -3 "$tmp/err"; continue; }
    read -r wall rss <"$tmp/time"
    size=$(stat -c %s "$out")
    python3 -c "n=$n;t=$t;w=$wall;print(f'{n:<9} {t:<7} {w:9.2f} {n/w:11.0f} {n/w/t:13.0f} {$size/1e6:10.1f} {$rss/1024:12.1f}')"
  done
  # The constraint stage alone: the full run file with --resume on the finished
  # file only applies the constraints (filter, histogram weights, draw of 841).
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" ensemble "$cfg" -n "$n" -q -o "$tmp/e$n-$cores.h5" --resume 2>"$tmp/err" || { echo "constraint stage failed:"; tail -3 "$tmp/err"; }
  read -r wall rss <"$tmp/time"
  printf '%-9s %-7s %9s (constraint stage only; peak RSS %.1f MB)\n' "$n" - "$wall" "$(python3 -c "print($rss/1024)")"
done
echo "(machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the end)"
