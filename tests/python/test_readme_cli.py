"""The README's command-line quick start works as written after the set-up
(issue 16, item 9).

Before: `bash launch/demo` built target/release/climcal and left `climcal` off
PATH, so the README's `climcal run ...` said "command not found".

Run by launch/test.d/20-storage-python.sh, which builds the binary and sets
CLIMCAL_BIN. Here `climcal` is put on PATH the way the set-up does (a directory on
PATH holding the binary: ~/.cargo/bin after `cargo install`), and the README's
lines run unchanged from a copy of the repository's layout.
"""
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))


def readme_cli_lines():
    text = (ROOT / "README.md").read_text()
    block = text.split("### Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln.split("#", 1)[0].strip() for ln in block.strip().splitlines() if ln.strip()]


def test_demo_installs_climcal_on_path():
    demo = (ROOT / "launch" / "demo").read_text()
    assert re.search(r"^cargo install --path \. --locked\b", demo, re.M), "launch/demo must install the climcal command"
    # ... and then uses the installed command, as the README does.
    assert re.search(r"^climcal run ", demo, re.M) and "./target/release/climcal" not in demo
    readme = (ROOT / "README.md").read_text()
    assert "cargo install --path . --locked" in readme and "~/.cargo/bin" in readme


def test_readme_command_line_quick_start_runs_as_written(tmp_path):
    if not Path(BIN).exists():
        pytest.skip(f"no climcal binary at {BIN} (set CLIMCAL_BIN)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(BIN, bindir / "climcal")
    work = tmp_path / "work"
    work.mkdir()
    (work / "cluster-examples").symlink_to(ROOT / "cluster-examples")
    (work / "tests").symlink_to(ROOT / "tests")  # the toy run file reads ../tests/data
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    lines = readme_cli_lines()
    assert lines[0].startswith("climcal run cluster-examples/toy-linear.toml")
    ran = 0
    for line in lines:
        argv = shlex.split(line)
        # The two-layer lines take minutes in a debug build and mpirun needs a run
        # file of the user's; the toy lines exercise the same command-line path.
        if argv[0] != "climcal" or "two-layer-hadcrut5.toml" in line:
            continue
        r = subprocess.run(argv + (["-q"] if argv[1] in ("run", "resume") else []), cwd=work, env=env, capture_output=True, text=True)
        assert r.returncode == 0, f"{line}: {r.stderr}"
        ran += 1
    assert ran >= 3  # run, info, resume
    info = subprocess.run(["climcal", "info", "run.h5", "--json"], cwd=work, env=env, capture_output=True, text=True)
    assert '"n_steps": 5000' in info.stdout  # 3000 from the run file + 2000 resumed
