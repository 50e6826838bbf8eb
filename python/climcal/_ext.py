"""Access to the compiled extension ``climcal._lib``.

``climcal.load`` and ``climcal.Chain`` (without diagnostics) work with h5py alone;
everything else needs the extension. When it cannot be imported, the error says
why and how to get it.
"""

from __future__ import annotations

try:  # pragma: no cover - exercised by the import itself
    from climcal import _lib
    _IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - only without the extension
    _lib = None
    _IMPORT_ERROR = exc


def native():
    """Return the extension module, or raise an ImportError that says how to build it."""
    if _lib is None:
        raise ImportError(
            "climcal's compiled extension (climcal._lib) could not be imported "
            f"({_IMPORT_ERROR}). Install the package with `pip install .` from the "
            "climcal repository (needs a Rust toolchain and libhdf5), or build a wheel "
            "with `maturin build --release`. climcal.load() and reading chains work "
            "without it; sampling and diagnostics do not."
        ) from _IMPORT_ERROR
    return _lib
