"""emcee 3's interface on climcal's engine: ``import climcal.emcee as emcee``.

The same ``EnsembleSampler``, ``State``, ``moves``, ``backends`` and
``autocorr`` as emcee 3.1.6; the moves run in Rust (``climcal._lib``), Python
is called for the log-probability. See docs/emcee.md for what runs where and
what differs.
"""

#: The emcee release whose interface this package implements.
__version__ = "3.1.6"

from . import autocorr, backends, moves  # noqa: E402
from .ensemble import EnsembleSampler, walkers_independent  # noqa: E402
from .state import State  # noqa: E402

__all__ = ["EnsembleSampler", "walkers_independent", "State", "moves", "autocorr", "backends", "__version__"]
