#!/usr/bin/env bash
# A 1 ms CPU-bound Python model (benches/data/busy_python_model.py) evaluated in
# worker interpreters: the Python API with ModelRunner(processes=2) vs
# processes=1 (and vs the in-process model), and `climcal run` with
# [model] name = "python" under `mpirun -n 2` vs one rank. Targets: >= 1.8x each
# on 2 cores. Evaluations/s from the chain files' wall_seconds (the sampling loop,
# without start-up); best of 3 interleaved repeats; ratios from this one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source launch/mpi-env
PY="${PYTHON:-python3}"
# Build and install the wheel and the CLI from this tree every time (cargo and
# maturin make that a no-op when nothing changed): a climcal already importable
# may be an older wheel from another checkout, without processes=, and timing it
# would measure other sources. A failed build stops here, saying so.
echo "[bench 45-python-model] maturin build --release; pip install (into $PY)"
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
# (`python -m maturin` cannot find maturin's binary from a venv: call it by name then.)
if command -v maturin >/dev/null; then mat=(maturin build -i "$PY"); else mat=("$PY" -m maturin build); fi
if ! "${mat[@]}" --release --quiet --out "$WHEELS" >"$WHEELS/build.log" 2>&1; then
  tail -20 "$WHEELS/build.log"
  echo "45-python-model: FAILED to build the wheel (${mat[*]} --release)" >&2
  exit 1
fi
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/climcal-*.whl
"$PY" -c "from climcal._ext import native; native().ModelRunner.from_worker_processes" || {
  echo "45-python-model: the climcal that $PY imports has no worker-process models (a stale install?)" >&2
  exit 1
}
CLI="${CLIMCAL_CLI:-target/release/climcal}"
if [ -z "${CLIMCAL_CLI:-}" ]; then
  echo "[bench 45-python-model] cargo build --release --bin climcal"
  cargo build --release --quiet --bin climcal
fi

CLIMCAL_CLI="$(pwd)/$CLI" MPIRUN="${MPIRUN[*]}" "$PY" - <<'PYEOF'
import os, shlex, shutil, subprocess, sys, tempfile
import numpy as np
import climcal

root = os.getcwd()
sys.path.insert(0, os.path.join(root, "benches", "data"))
import busy_python_model as busy

NW, NSTEPS, REPEAT = 32, 60, 3
obs = np.genfromtxt(os.path.join(root, "tests/data/toy_linear.csv"), delimiter=",", names=True, skip_header=1)
params = climcal.ParameterSet({"intercept": climcal.Normal(0.0, 5.0), "slope": climcal.Uniform(-1.0, 2.0)})
target = climcal.Target().add_variable("y", obs["year"], obs["y"], obs["y_sigma"])
tmp = tempfile.mkdtemp()

def api(processes):
    kw = {} if processes is None else {"processes": processes}
    r = climcal.ModelRunner(model_factory=busy.line_1ms, output_variables=["y"], **kw)
    s = climcal.EnsembleSampler(parameters=params, target=target, runner=r, n_walkers=NW, seed=1)
    out = os.path.join(tmp, f"api{processes}.h5")
    if os.path.exists(out):
        os.remove(out)
    s.run(s.initialize("ball", center={"intercept": 1.5, "slope": 0.3}, radius=1e-2), n_steps=NSTEPS,
          progress=False, checkpoint_path=out, checkpoint_every=NSTEPS)
    c = climcal.load(out)
    return NW * NSTEPS / c.metadata["wall_seconds"], c

cfg = os.path.join(tmp, "run.toml")
shutil.copy(os.path.join(root, "tests/data/toy_linear.csv"), tmp)
with open(cfg, "w") as f:
    f.write(f"""
[parameters.intercept]
prior = {{ dist = "normal", mean = 0.0, std = 5.0 }}
[parameters.slope]
prior = {{ dist = "uniform", lower = -1.0, upper = 2.0 }}
[model]
name = "python"
options = {{ file = "{root}/benches/data/busy_python_model.py", function = "line_1ms", outputs = ["y"] }}
[target.variables.y]
file = "toy_linear.csv"
column = "y"
sigma = "y_sigma"
[sampler]
n_walkers = {NW}
n_steps = {NSTEPS}
seed = 1
init = {{ method = "ball", center = {{ intercept = 1.5, slope = 0.3 }}, radius = 1e-2 }}
[output]
checkpoint_every = {NSTEPS}
blobs = false
""")

def cli(ranks):
    out = os.path.join(tmp, f"cli{ranks}.h5")
    cmd = [os.environ["CLIMCAL_CLI"], "run", cfg, "-o", out, "--force", "-q", "--threads", "1"]
    if ranks > 1:
        cmd = shlex.split(os.environ["MPIRUN"]) + ["-n", str(ranks)] + cmd
    subprocess.run(cmd, check=True, capture_output=True)
    c = climcal.load(out)
    return NW * NSTEPS / c.metadata["wall_seconds"], c

res = {k: [] for k in ("inproc", "p1", "p2", "r1", "r2")}
chains = {}
for _ in range(REPEAT):
    for k, f in (("inproc", lambda: api(None)), ("p1", lambda: api(1)), ("p2", lambda: api(2)),
                 ("r1", lambda: cli(1)), ("r2", lambda: cli(2))):
        v, c = f()
        res[k].append(v)
        chains[k] = c
best = {k: max(v) for k, v in res.items()}
same = all(chains[k].samples.tobytes() == chains["inproc"].samples.tobytes() for k in chains)
print(f"1 ms Python model, {NW} walkers x {NSTEPS} steps, best of {REPEAT} (evaluations/s, wall)")
print(f"  Python API, in-process          {best['inproc']:8.0f}")
print(f"  Python API, processes=1         {best['p1']:8.0f}")
print(f"  Python API, processes=2         {best['p2']:8.0f}   {best['p2'] / best['p1']:.2f}x processes=1 (target >= 1.8)")
print(f"  climcal run, 1 rank             {best['r1']:8.0f}")
print(f"  climcal run, mpirun -n 2        {best['r2']:8.0f}   {best['r2'] / best['r1']:.2f}x one rank (target >= 1.8)")
print(f"  all five chains identical bit for bit: {same}")
shutil.rmtree(tmp, ignore_errors=True)
PYEOF
