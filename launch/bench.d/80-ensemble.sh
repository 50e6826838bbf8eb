#!/usr/bin/env bash
# climcal ensemble: the fair-style two-layer run file (two-layer model from 1750,
# HadCRUT5 + OHC likelihoods, RMSE filter, histogram weighting, draw of 841) at
# N = 100 000 and 1 000 000 members (BENCH_ENSEMBLE_N overrides the list): the
# evaluation (run file without its constraints) on 1 and all threads, side by side
# in this one run: wall time, members/s and per core, the speedup of all threads
# over one (and, as the machine's ceiling, what the same number of independent
# one-thread processes achieve together), file size and peak RSS (GNU time), which should not grow with N, and
# from the run's sidecar log (FILE.log) the part of the wall time that is not
# model evaluation (drawing members, the HDF5 writes, start-up: rank 0's serial
# part) per member; then the constraint stage alone on the finished file
# (--resume), which holds O(N) arrays (weights, filter flags, bin codes: ~50 bytes
# per member) and writes the final file afresh (header, members copied, results).
# BIN overrides the binary (default target/release/climcal, built here).
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-target/release/climcal}
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin climcal 2>&1 | tail -1; fi
cfg=cluster-examples/two-layer-fair-style.toml
tmp=$(mktemp -d)
# The evaluation alone: the same run file without its constraints (next to it, so
# that its data paths resolve).
eval_cfg="cluster-examples/.bench-eval-$$.toml"
sed '/^\[\[ensemble.filters\]\]/,$d' "$cfg" >"$eval_cfg"
trap 'rm -rf "$tmp" "$eval_cfg"' EXIT
cores=$(nproc)
ns=${BENCH_ENSEMBLE_N:-"100000 1000000"}
printf '%-9s %-7s %9s %11s %13s %8s %10s %12s %15s\n' members threads wall_s members/s per_core_/s speedup file_MB peak_RSS_MB serial_us/member
for n in $ns; do
  one=""
  for t in 1 "$cores"; do
    out="$tmp/e$n-$t.h5"
    rm -f "$out.log"
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" ensemble "$eval_cfg" -n "$n" --threads "$t" -q -o "$out" --force 2>"$tmp/err" || { echo "run failed:"; tail -3 "$tmp/err"; continue; }
    read -r wall rss <"$tmp/time"
    size=$(stat -c %s "$out")
    [ -z "$one" ] && one=$wall
    python3 - "$out.log" <<EOF
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = [x for x in runs if x["event"] == "members"][-1]
n, t, w, one = $n, $t, $wall, $one
serial = (r["seconds"] - r["eval_seconds"]) / n * 1e6
print(f"{n:<9} {t:<7} {w:9.2f} {n/w:11.0f} {n/w/t:13.0f} {one/w:8.2f} {$size/1e6:10.1f} {$rss/1024:12.1f} {serial:15.2f}")
EOF
  done
  # The machine's own ceiling for comparison: $cores independent one-thread
  # processes of N/$cores members each at once (nothing shared but the machine).
  if [ "$cores" -gt 1 ]; then
    half=$((n / cores))
    s0=$(date +%s.%N)
    for k in $(seq 1 "$cores"); do
      "$bin" ensemble "$eval_cfg" -n "$half" --seed "$k" --threads 1 -q -o "$tmp/p$k.h5" --force 2>/dev/null &
    done
    wait
    wall=$(python3 -c "import time; print(f'{time.time() - $s0:.2f}')")
    python3 -c "n=$half*$cores;w=$wall;print(f'{n:<9} {\"$cores×1p\":<7} {w:9.2f} {n/w:11.0f} {n/w/$cores:13.0f} {$one/w*n/$n:8.2f}   ($cores independent 1-thread processes of {$half} members at once)')"
    rm -f "$tmp"/p*.h5*
  fi
  if [ "$cores" -gt 1 ] && cmp -s "$tmp/e$n-1.h5" "$tmp/e$n-$cores.h5"; then
    echo "$n: the 1-thread and $cores-thread files are byte-identical"
  else
    echo "$n: the 1-thread and $cores-thread files DIFFER"
  fi
  # The constraint stage alone: the full run file with --resume on the finished
  # file only applies the constraints (filter, histogram weights, draw of 841).
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" ensemble "$cfg" -n "$n" -q -o "$tmp/e$n-$cores.h5" --resume 2>"$tmp/err" || { echo "constraint stage failed:"; tail -3 "$tmp/err"; }
  read -r wall rss <"$tmp/time"
  printf '%-9s %-7s %9s (constraint stage only; peak RSS %.1f MB; final file %.1f MB)\n' "$n" - "$wall" "$(python3 -c "print($rss/1024)")" "$(python3 -c "print($(stat -c %s "$tmp/e$n-$cores.h5")/1e6)")"
  rm -f "$tmp"/e"$n"-*
done
echo "(machine: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg) at the end)"
