#!/usr/bin/env bash
# Live readers side by side: `climcal run` checkpointing every step (32 walkers,
# a model sleeping 300 µs, one thread: ~10 s), alone and with stock h5py
# (default file locking) opening the file every 2 ms and reading the committed
# rows, alternating runs. Prints the writer's time (the file's wall_seconds) for
# each run, the failed reads, and the ratio of medians (with / without reader).
# Control: the same reader polling a finished copy instead of the live file, so
# that on a busy machine the cost of sharing the CPUs shows apart from any
# interaction through the file.
# Needs h5py; tests/python/test_storage_live.py asserts the 0 failed reads.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${CLIMCAL_BIN:-target/release/climcal}
[ -x "$bin" ] || cargo build --release --bin climcal 2>&1 | tail -1
REPEATS=${REPEATS:-3} python3 - "$bin" <<'PY'
import os, statistics, subprocess, sys, tempfile, time
import h5py

BIN = os.path.abspath(sys.argv[1])
CONFIG = """
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 3.0 }
[parameters.b]
prior = { dist = "normal", mean = 0.0, std = 3.0 }
[model]
name = "gaussian"
options = { sleep_us = 300 }
[sampler]
n_walkers = 32
n_steps = 1000
seed = 5
[output]
path = "poll.h5"
checkpoint_every = 1
"""

def run(poll, other=None):
    d = tempfile.mkdtemp()
    open(os.path.join(d, "run.toml"), "w").write(CONFIG)
    path = os.path.join(d, "poll.h5")
    p = subprocess.Popen([BIN, "run", "run.toml", "-q", "--threads", "1"], cwd=d)
    ok = bad = 0
    while p.poll() is None:
        target = other or path
        if poll and os.path.exists(target):
            try:
                with h5py.File(target, "r") as f:
                    n = int(f["mcmc"].attrs["iteration"])
                    f["mcmc/chain"][:n]
                ok += 1
            except Exception:
                bad += 1
        time.sleep(0.002)
    assert p.returncode == 0
    with h5py.File(path, "r") as f:
        return float(f["climcal"].attrs["wall_seconds"]), ok, bad, path

alone, polled, control = [], [], []
print(f"{'run':>4} {'alone s':>9} {'live reader s':>14} {'reads':>6} {'failed':>7} {'control s':>10}")
for i in range(int(os.environ["REPEATS"])):
    a, _, _, done = run(False)
    b, ok, bad, _ = run(True)
    c = run(True, other=done)[0]
    alone.append(a); polled.append(b); control.append(c)
    print(f"{i:>4} {a:>9.2f} {b:>14.2f} {ok:>6} {bad:>7} {c:>10.2f}")
m = statistics.median
print(f"writer with a live reader / alone: x{m(polled) / m(alone):.3f}; with the control reader / alone: x{m(control) / m(alone):.3f}; "
      f"live / control: x{m(polled) / m(control):.3f} (ratios of medians; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
PY
