#!/usr/bin/env bash
# emcee 3.1.6's own test suite (the tests installed with emcee, as in its sdist's
# tests/ folder) run against climcal.emcee, with the imports rewritten and the
# tests that cannot apply deselected (tests/emcee_suite/run.py lists them, with the
# reason; docs/emcee.md too). Needs the climcal wheel (50-python.sh installs it)
# and emcee==3.1.6 (launch/requirements-dev.txt). ~35 s of CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$PY" tests/emcee_suite/run.py -p no:warnings "$@"
