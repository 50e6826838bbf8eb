"""Every ```python block of docs/python.md runs as written, in order, in one
namespace, in a temporary directory (issue 16); and so does the README's Python
quick start, the design's lines, adapted only by its import line.

The working directory is a temporary one holding a link to the repository's
cluster-examples/ (the docs' paths are relative to the repository root), so
files the snippets write (run.h5, *.png) land there."""
import os
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    (tmp_path / "cluster-examples").symlink_to(ROOT / "cluster-examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_blocks(blocks, where):
    ns = {"__name__": "__docs__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{where} python block {i + 1}", "exec"), ns)
        except Exception as e:  # pragma: no cover - the message says which block
            raise AssertionError(f"{where}, python block {i + 1} failed: {type(e).__name__}: {e}\n{code}") from e
    return ns


def test_docs_python_md_snippets_run(in_tmp):
    blocks = python_blocks((ROOT / "docs" / "python.md").read_text())
    assert len(blocks) >= 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # autocorr_time(quiet=True) on 2000 steps
        ns = run_blocks(blocks, "docs/python.md")
    for f in ("run.h5", "trace.png", "corner.png", "ppc.png"):
        assert (in_tmp / f).stat().st_size > 0, f
    # The point estimate of the quick start's synthetic data is interior and near the truth.
    res = ns["res"]
    assert res.at_bounds == []
    assert abs(res.best_params["lambda"] - 1.2) < 0.1 and abs(res.best_params["heat_capacity"] - 8.0) < 1.0
    # The resumed file holds the quick start's 2000 steps and the 1000 resumed ones.
    assert ns["climcal"].load("run.h5").n_steps == 3000


def test_readme_python_quick_start_runs(in_tmp):
    text = (ROOT / "README.md").read_text()
    section = text.split("### Python", 1)[1]
    blocks = python_blocks(section)
    assert blocks and blocks[0].startswith("import numpy as np, climcal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ns = run_blocks(blocks[:1], "README.md ### Python")
    assert ns["later"].n_steps == 2000 and (in_tmp / "corner.png").exists()
