#!/usr/bin/env python3
"""The bad-input catalogue of the README's "Reliability" section, run for real:
each case gets a fresh directory, one `climcal` command, and a row with the exit
code, the time taken, the start of the message, and whether every file in the
directory is byte-identical afterwards (nothing created, changed or removed).

    python3 launch/bad-input-catalogue.py [path/to/climcal]   # default target/debug/climcal

Needs h5py (to damage chain files). tests/cli_bad_input.rs asserts the same cases.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "debug" / "climcal")
GAUSS = """
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 10.0 }
[parameters.b]
prior = { dist = "uniform", lower = -20.0, upper = 20.0 }
[model]
name = "gaussian"
options = { mean = [1.0, -2.0], std = [1.0, 2.0] }
[sampler]
n_walkers = 8
n_steps = 20
seed = 11
[output]
path = "out.h5"
checkpoint_every = 5
"""
LINEAR = (ROOT / "tests/data/toy_linear.toml").read_text().replace("[output]", '[output]\npath = "out.h5"').replace(
    "n_steps = 300", "n_steps = 20"
)
CSV = (ROOT / "tests/data/toy_linear.csv").read_text()


def edit_csv(prefix, row):
    return "\n".join(row if line.startswith(prefix) else line for line in CSV.splitlines()) + "\n"


def snapshot(d):
    return {p.name: (p.read_bytes() if p.is_file() else b"<dir>") for p in sorted(d.iterdir())}


def finished(d):
    subprocess.run([BIN, "run", "run.toml", "-q"], cwd=d, check=True)


def h5edit(fn):
    def go(d):
        finished(d)
        with h5py.File(d / "out.h5", "r+") as f:
            fn(f)
    return go


def truncate(d):
    finished(d)
    b = (d / "out.h5").read_bytes()
    (d / "trunc.h5").write_bytes(b[: len(b) // 3])


CASES = [
    # (case, run file, csv, setup, command)
    ("toy `sleep_us = nan`", GAUSS.replace("2.0] }", "2.0], sleep_us = nan }"), CSV, None, "run run.toml -q"),
    ("toy `cost_us = -1`", GAUSS.replace("2.0] }", "2.0], cost_us = -1.0 }"), CSV, None, "run run.toml -q"),
    ("`linear` `sleep_us = 1e308`", LINEAR.replace("t_end = 20 }", "t_end = 20, sleep_us = 1e308 }"), CSV, None, "run run.toml -q"),
    ("`linear` `t_end = 1e12`", LINEAR.replace("t_end = 20", "t_end = 1e12"), CSV, None, "run run.toml -q"),
    ("`linear` `t_end = 1e308`", LINEAR.replace("t_end = 20", "t_end = 1e308"), CSV, None, "run run.toml -q"),
    ("`n_walkers = 8000000000`", GAUSS.replace("n_walkers = 8", "n_walkers = 8000000000"), CSV, None, "run run.toml -q"),
    ("`n_steps = 1e15` kept in memory", GAUSS.replace("n_steps = 20", "n_steps = 1000000000000000"), CSV, None, "run run.toml -q"),
    ("2e10 steps × 21 blobs", LINEAR.replace("n_steps = 20", "n_steps = 20000000000"), CSV, None, "run run.toml -q"),
    ("density `dim = 8000000000`", "[model]\nname = \"rosenbrock\"\noptions = { dim = 8000000000 }\n", CSV, None, "run run.toml -q"),
    ("`-o DIR --force`, DIR a directory", GAUSS, CSV, lambda d: (d / "adir").mkdir(), "run run.toml -q -o adir --force"),
    ("existing output, no `--force`", GAUSS, CSV, lambda d: (d / "out.h5").write_text("precious"), "run run.toml -q"),
    ("CSV value `nan` (line 13)", LINEAR, edit_csv("10,", "10,nan,0.5"), None, "run run.toml -q"),
    ("CSV σ = −0.5 (line 7)", LINEAR, edit_csv("4,", "4,1.0,-0.5"), None, "run run.toml -q"),
    ("CSV time `10x` (line 13)", LINEAR, CSV.replace("\n10,", "\n10x,"), None, "run run.toml -q"),
    ("resume, `mcmc/log_prob` missing", GAUSS, CSV, h5edit(lambda f: f.__delitem__("mcmc/log_prob")), "resume out.h5 -q --steps 20"),
    (
        "resume, `mcmc/chain` not resizable",
        GAUSS,
        CSV,
        h5edit(lambda f: (f.__delitem__("mcmc/chain"), f.create_dataset("mcmc/chain", shape=(20, 8, 2), dtype="f8"))),
        "resume out.h5 -q --steps 20",
    ),
    (
        "resume, stored run file not TOML",
        GAUSS,
        CSV,
        h5edit(lambda f: f["climcal"].attrs.__setitem__("config_toml", "this is = = not toml")),
        "resume out.h5 -q --steps 5",
    ),
    ("`info`, `iteration = -5`", GAUSS, CSV, h5edit(lambda f: f["mcmc"].attrs.__setitem__("iteration", -5)), "info out.h5"),
    ("`resume`, `iteration = -5`", GAUSS, CSV, h5edit(lambda f: f["mcmc"].attrs.__setitem__("iteration", -5)), "resume out.h5 -q"),
    ("`info`, truncated file", GAUSS, CSV, truncate, "info trunc.h5"),
    ("`resume`, truncated file", GAUSS, CSV, truncate, "resume trunc.h5 -q"),
    ("`info`, not HDF5", GAUSS, CSV, lambda d: (d / "text.h5").write_text("not hdf5 at all"), "info text.h5"),
    ("unknown key `n_walker`", GAUSS.replace("seed = 11", "seed = 11\nn_walker = 8"), CSV, None, "run run.toml -q"),
    ("odd `n_walkers = 7`", GAUSS.replace("n_walkers = 8", "n_walkers = 7"), CSV, None, "run run.toml -q"),
]


def main():
    print("| case | command | exit | time | message | files untouched |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for name, config, csv, setup, cmd in CASES:
        d = Path(tempfile.mkdtemp())
        try:
            (d / "run.toml").write_text(config)
            (d / "toy_linear.csv").write_text(csv)
            if setup:
                setup(d)
            before = snapshot(d)
            t0 = time.time()
            r = subprocess.run([BIN, *cmd.split()], cwd=d, capture_output=True, text=True)
            dt = time.time() - t0
            untouched = snapshot(d) == before
            msg = r.stderr.strip().splitlines()[0] if r.stderr.strip() else ""
            msg = msg.replace(str(d) + "/", "").replace("climcal: error: ", "")
            if len(msg) > 150:
                msg = msg[:147] + "…"
            msg = msg.replace("|", "\\|")
            bad += r.returncode != 2 or not untouched
            print(f"| {name} | `climcal {cmd}` | {r.returncode} | {dt:.2f} s | {msg} | {'yes' if untouched else 'NO'} |")
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
