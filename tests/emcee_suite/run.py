"""Run emcee 3.1.6's own test suite against ``climcal.emcee``.

The tests are those installed with emcee (``emcee/tests``: the same files as
the ``tests/`` folder of emcee's sdist). They are copied to a temporary folder
with their imports rewritten (``import emcee`` -> ``import climcal.emcee as
emcee``, ``from emcee...`` -> ``from climcal.emcee...``); nothing else is
changed. The tests that cannot apply are deselected here, each with its
reason (also listed in docs/emcee.md).

Usage: python tests/emcee_suite/run.py [pytest arguments]
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tempfile
from pathlib import Path

EXPECTED_EMCEE = "3.1.6"

#: test (file::function, every parametrisation) -> why it cannot apply.
NOT_APPLICABLE = {
    "integration/test_longdouble.py::test_longdouble_actually_needed":
        "climcal's moves compute in float64 (Rust); the test needs long-double proposals "
        "(steps of 100 long-double epsilons around 58000)",
}


def emcee_tests_dir() -> Path:
    spec = importlib.util.find_spec("emcee")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("emcee is not installed (pip install emcee==3.1.6): its test suite is what this runs")
    root = Path(next(iter(spec.submodule_search_locations)))
    version = (root / "emcee_version.py").read_text()
    if EXPECTED_EMCEE not in version:
        sys.exit(f"expected emcee {EXPECTED_EMCEE}'s tests, found {version.strip()}")
    return root / "tests"


def rewrite(text: str) -> str:
    text = re.sub(r"^import emcee$", "import climcal.emcee as emcee", text, flags=re.M)
    return re.sub(r"^from emcee(\.| )", r"from climcal.emcee\1", text, flags=re.M)


def main(argv: list[str]) -> int:
    import pytest

    src = emcee_tests_dir()
    with tempfile.TemporaryDirectory(prefix="emcee-suite-") as tmp:
        dst = Path(tmp) / "emcee_tests"
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        n = 0
        for f in dst.rglob("*.py"):
            old = f.read_text()
            new = rewrite(old)
            assert "import emcee\n" not in new and "from emcee" not in new, f
            if new != old:
                f.write_text(new)
                n += 1
        print(f"[emcee-suite] emcee {EXPECTED_EMCEE} tests from {src.parent.name}/tests, {n} files rewritten")
        args = ["-q", "-p", "no:cacheprovider", "--rootdir", tmp, str(dst)]
        names = []
        for test_id, why in NOT_APPLICABLE.items():
            print(f"[emcee-suite] not applicable: {test_id}: {why}")
            names.append(test_id.split("::")[-1])
        if names:
            args += ["-k", " and ".join(f"not {n}" for n in names)]
        return pytest.main(args + argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
