"""climcal.emcee across kill -9: a run whose process is killed while its
HDFBackend is being written, then continued by a new process from the file
(emcee's resume: a sampler on the stored backend, ``run_mcmc(None, rest)``),
gives bit for bit the chain of the run that went straight through — for a
mixture of moves with blobs and for DIME, whose adaptive proposal must come
back from the file (``climcal_move_state``) for that to hold."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("climcal._lib")
h5py = pytest.importorskip("h5py")

NSTEPS = 300

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import climcal.emcee as emcee

    path, mode, moves_name = sys.argv[1], sys.argv[2], sys.argv[3]
    nsteps = int(sys.argv[4])

    def log_prob(x):
        # A bimodal 3-D target and two blobs (a float and an int of the position).
        time.sleep(float(sys.argv[5]))
        a = -0.5 * float(np.sum((x - 1.5) ** 2))
        b = -0.5 * float(np.sum((x + 1.5) ** 2))
        return np.logaddexp(a, b), float(x[0] + x[1]), int(np.floor(10 * x[2]))

    def moves():
        if moves_name == "dime":
            return emcee.moves.DIMEMove(aimh_prob=0.3)
        return [(emcee.moves.DEMove(), 0.7), (emcee.moves.DESnookerMove(), 0.3)]

    backend = emcee.backends.HDFBackend(path, flush_interval=0)
    if mode == "fresh":
        np.random.seed(2024)
        p0 = np.random.randn(16, 3)
        sampler = emcee.EnsembleSampler(16, 3, log_prob, moves=moves(), backend=backend)
        for _ in sampler.sample(p0, iterations=nsteps):
            pass
    else:
        sampler = emcee.EnsembleSampler(16, 3, log_prob, moves=moves(), backend=backend)
        sampler.run_mcmc(None, nsteps - sampler.iteration)
    """
)


def _run(script, *args):
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script), *map(str, args)], env=env, check=True, timeout=600)


def _iteration(path):
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f["mcmc"].attrs["iteration"])
    except (OSError, KeyError):
        return 0


def _read(path):
    with h5py.File(path, "r", locking=False) as f:
        g = f["mcmc"]
        it = int(g.attrs["iteration"])
        return {
            "chain": g["chain"][:it],
            "log_prob": g["log_prob"][:it],
            "blobs": g["blobs"][:it],
            "accepted": g["accepted"][...],
            "iteration": it,
        }


@pytest.mark.parametrize("moves_name", ["mixture", "dime"])
def test_kill9_then_resume_equals_straight_run(tmp_path, moves_name):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    straight = tmp_path / "straight.h5"
    _run(script, straight, "fresh", moves_name, NSTEPS, 0)

    crashed = tmp_path / "crashed.h5"
    env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE", OMP_NUM_THREADS="1")
    # 0.3 ms per evaluation: ~10 ms per step, so the kill lands mid-run.
    proc = subprocess.Popen([sys.executable, str(script), str(crashed), "fresh", moves_name, str(NSTEPS), "0.0003"],
                            env=env)
    deadline = time.monotonic() + 300
    while _iteration(crashed) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _iteration(crashed)
    assert 40 <= killed_at < NSTEPS

    _run(script, crashed, "resume", moves_name, NSTEPS, 0)
    a, b = _read(straight), _read(crashed)
    assert a["iteration"] == b["iteration"] == NSTEPS
    for k in ("chain", "log_prob", "blobs", "accepted"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} differs after a kill -9 at step {killed_at}")
    if moves_name == "dime":
        with h5py.File(crashed, "r", locking=False) as f:
            assert "climcal_move_state" in f["mcmc"].attrs


def test_resumed_dime_without_its_state_differs(tmp_path):
    """The check above can fail: DIME resumed with its adaptation dropped (the
    attribute deleted from the file) gives another chain."""
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    straight = tmp_path / "straight.h5"
    _run(script, straight, "fresh", "dime", NSTEPS, 0)
    part = tmp_path / "part.h5"
    _run(script, part, "fresh", "dime", 100, 0)
    with h5py.File(part, "a", locking=False) as f:
        del f["mcmc"].attrs["climcal_move_state"]
    _run(script, part, "resume", "dime", NSTEPS, 0)
    a, b = _read(straight), _read(part)
    np.testing.assert_array_equal(a["chain"][:100], b["chain"][:100])
    assert not np.array_equal(a["chain"][100:], b["chain"][100:])
