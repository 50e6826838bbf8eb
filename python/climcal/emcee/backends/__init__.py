"""Where ``climcal.emcee`` keeps chains: in memory or in an HDF5 file (emcee's layout)."""

from .backend import Backend
from .hdf import HDFBackend, TempHDFBackend

__all__ = ["Backend", "HDFBackend", "TempHDFBackend", "get_test_backends"]


def get_test_backends():
    """The backend classes to test with: ``Backend``, and ``TempHDFBackend`` with h5py."""
    out = [Backend]
    try:
        import h5py  # noqa: F401
    except ImportError:  # pragma: no cover
        return out
    out.append(TempHDFBackend)
    return out
