"""climcal: calibrate reduced-complexity climate models from Python.

Priors (``Uniform``, ``Normal``, ``LogNormal``, ``TruncatedNormal``, ``Bound``),
``ParameterSet``, ``Target``, ``GaussianLikelihood``, ``AR1Likelihood``, ``ModelRunner`` and the
affine-invariant ``EnsembleSampler`` run in Rust (the private extension
``climcal._lib``) with the GIL released; ``Chain`` gives diagnostics, pandas and
ArviZ conversions and plots; ``climcal.load`` reads chain files with h5py alone.

Examples
--------
>>> import climcal
>>> params = climcal.ParameterSet({"lambda": climcal.Uniform(0.3, 3.0),
...                                "heat_capacity": climcal.LogNormal(2.0, 0.5)})
>>> runner = climcal.ModelRunner("one_box")
"""

from __future__ import annotations

from ._ext import _IMPORT_ERROR, _lib, native
from .chain import AutocorrError, Chain
from .ensemble import Ensemble, kish_ess, load_ensemble, weighted_quantile
from .io import load
from .projection import Projections, load_projection
from .progress import ProgressInfo

__all__ = [
    "AR1Likelihood",
    "AutocorrError",
    "Bound",
    "Chain",
    "Distribution",
    "Ensemble",
    "EnsembleSampler",
    "GaussianLikelihood",
    "LogNormal",
    "ModelRunner",
    "Normal",
    "ParameterSet",
    "PointEstimator",
    "ProgressInfo",
    "Projections",
    "Target",
    "TruncatedNormal",
    "Uniform",
    "kish_ess",
    "load",
    "load_ensemble",
    "load_projection",
    "weighted_quantile",
]

if _lib is not None:
    from ._lib import (  # noqa: F401
        AR1Likelihood,
        Bound,
        Distribution,
        GaussianLikelihood,
        LogNormal,
        Normal,
        ParameterSet,
        SamplerState,
        TruncatedNormal,
        Uniform,
    )
    from ._lib import __version__  # noqa: F401
    from . import moves  # noqa: F401
    from .optimize import PointEstimator  # noqa: F401
    from .runner import ModelRunner  # noqa: F401
    from .sampler import EnsembleSampler  # noqa: F401
    from .target import Target  # noqa: F401
else:  # pragma: no cover - only without the extension

    def __getattr__(name: str):
        if name in __all__:
            native()  # raises the explanatory ImportError
        raise AttributeError(f"module 'climcal' has no attribute {name!r}")
