#!/usr/bin/env bash
# emcee/h5py compatibility of climcal chain files and live reading during a run
# (tests/python/test_emcee_compat.py, tests/python/test_storage_live.py), and the
# README's command-line quick start (tests/python/test_readme_cli.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --bin climcal 2>&1 | tail -n 2
CLIMCAL_BIN="$PWD/target/debug/climcal" python3 -m pytest -q \
  tests/python/test_emcee_compat.py tests/python/test_storage_live.py tests/python/test_readme_cli.py
