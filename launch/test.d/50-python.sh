#!/usr/bin/env bash
# Python package: build the wheel (maturin, features python + hdf5 + rscm as in
# pyproject.toml, no MPI), install it, run the pytest suite in tests/python
# (CLIMCAL_TEST_RSCM=1: test_rscm.py fails rather than skips without RSCM). pytest's exit 5 ("no tests collected")
# is a failure here, as is any failing test.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY="${PYTHON:-python3}"
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT

echo "[50-python] maturin build --release"
"$PY" -m maturin build --release --quiet --out "$WHEELS" 2>&1 | grep -v '^\s*Compiling' || true
whl=$(ls "$WHEELS"/climcal-*.whl 2>/dev/null | head -1)
if [ -z "$whl" ]; then
  echo "[50-python] FAILED: maturin produced no wheel" >&2
  exit 1
fi
echo "[50-python] pip install $(basename "$whl")"
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$whl"

export MPLBACKEND=Agg
export CLIMCAL_TEST_RSCM=1
set +e
# test_emcee_compat.py, test_storage_live.py and test_readme_cli.py belong to 20-storage-python.sh.
"$PY" -m pytest -q -p no:cacheprovider tests/python \
  --ignore=tests/python/test_emcee_compat.py --ignore=tests/python/test_storage_live.py \
  --ignore=tests/python/test_readme_cli.py "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[50-python] FAILED: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
