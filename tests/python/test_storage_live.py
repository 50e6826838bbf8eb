"""Reading a chain file while `climcal run` writes it: stock h5py and emcee see
the rows committed so far, committed rows never change, and no read fails: the
writer takes no HDF5 file lock, so readers with the default locking never collide
with it and never make it wait.
"""
import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

emcee = pytest.importorskip("emcee")

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))

CONFIG = """
[parameters.a]
prior = { dist = "normal", mean = 0.0, std = 3.0 }
[parameters.b]
prior = { dist = "normal", mean = 0.0, std = 3.0 }

[model]
name = "gaussian"
options = { sleep_us = 200 }

[sampler]
n_walkers = 16
n_steps = 600
seed = 3

[output]
path = "live.h5"
checkpoint_every = 20
"""


def test_h5py_and_emcee_read_during_a_run(tmp_path):
    (tmp_path / "run.toml").write_text(CONFIG)
    proc = subprocess.Popen([BIN, "run", "run.toml", "-q"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    path = tmp_path / "live.h5"
    seen = []  # (iteration, chain rows read with h5py)
    seen_emcee = []  # chains read with emcee
    try:
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < 120:
            if not path.exists():
                time.sleep(0.01)
                continue
            try:
                with h5py.File(path, "r") as f:
                    it = int(f["mcmc"].attrs["iteration"])
                    chain = f["mcmc/chain"][:it]
                b = emcee.backends.HDFBackend(str(path), read_only=True)
                emcee_chain = b.get_chain() if b.iteration > 0 else None
            except (OSError, BlockingIOError, AttributeError):
                # The writer holds the lock at this instant; h5py does not retry
                # (emcee turns that OSError into "not initialized": AttributeError).
                time.sleep(0.005)
                continue
            seen.append((it, chain))
            if emcee_chain is not None:
                seen_emcee.append(emcee_chain)
            time.sleep(0.02)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    its = [it for it, _ in seen]
    assert its == sorted(its), "the committed iteration only grows"
    mid = [it for it in its if 0 < it < 600]
    assert len(set(mid)) >= 3, f"expected to see the run in progress, saw iterations {sorted(set(its))}"
    assert all(it % 20 == 0 for it in mid), "only whole checkpoints are visible"
    with h5py.File(path, "r") as f:
        final = f["mcmc/chain"][()]
    assert final.shape == (600, 16, 2)
    for it, chain in seen:
        np.testing.assert_array_equal(chain, final[:it])
    assert len(seen_emcee) >= 3
    for chain in seen_emcee:
        assert chain.shape[0] % 20 == 0
        np.testing.assert_array_equal(chain, final[: chain.shape[0]])


POLL_CONFIG = """
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


def _run_writer(tmp_path, name, poll):
    """One `climcal run` checkpointing every step (serial, a sleeping model: ~10 s
    and little CPU), with stock h5py polling every 2 ms while it runs when `poll`.
    Returns (writer seconds as the file records them, reads, failures, final chain);
    a read is (committed rows seen, the last of them)."""
    d = tmp_path / name
    d.mkdir()
    (d / "run.toml").write_text(POLL_CONFIG)
    path = d / "poll.h5"
    proc = subprocess.Popen([BIN, "run", "run.toml", "-q", "--threads", "1"], cwd=d, stderr=subprocess.PIPE, text=True)
    reads, failures = [], []
    try:
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < 60:
            if not poll or not path.exists():
                time.sleep(0.002)
                continue
            try:
                if len(reads) % 10 == 9:
                    b = emcee.backends.HDFBackend(str(path), read_only=True)
                    # emcee refuses get_chain() on a file with no rows yet (by design)
                    chain = b.get_chain() if b.iteration > 0 else None  # opens the file again
                    it = 0 if chain is None else chain.shape[0]
                    last = chain[-1] if it > 0 else None
                else:
                    with h5py.File(path, "r") as f:  # stock h5py: default locking
                        it = int(f["mcmc"].attrs["iteration"])
                        chain = f["mcmc/chain"][:it]
                        f["mcmc/log_prob"][:it]
                        last = chain[-1] if it > 0 else None
                reads.append((it, last))
            except Exception as exc:  # any failure to read counts
                failures.append(repr(exc))
            time.sleep(0.002)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with h5py.File(path, "r") as f:
        return float(f["climcal"].attrs["wall_seconds"]), reads, failures, f["mcmc/chain"][()]


def test_stock_readers_polling_every_2ms_never_fail(tmp_path):
    """Stock h5py (default file locking) and emcee's HDFBackend poll every 2 ms
    while the writer checkpoints every step: no read fails, every read sees
    committed rows only. (The writer takes no HDF5 lock, so it never waits for a
    reader either; how much a reader slows it is measured side by side in
    launch/bench.d/25-live-reader.sh, not asserted here.)"""
    _, reads, failures, final = _run_writer(tmp_path, "polled", poll=True)
    assert failures == [], f"{len(failures)} of {len(reads) + len(failures)} reads failed: {failures[:3]}"
    assert len(reads) > 1000, f"only {len(reads)} reads"
    its = [it for it, _ in reads]
    assert its == sorted(its) and len(set(its)) > 100, "the reader sees the run progress"
    for it, last in reads:
        if it > 0:
            np.testing.assert_array_equal(last, final[it - 1])
