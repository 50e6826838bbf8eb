//! PyO3 bindings (feature `python`): the private extension module `climcal._lib`.
//!
//! The binding is thin: it wraps the engine's types and converts arrays and
//! errors. Argument normalisation, progress bars, chains as pandas/ArviZ objects,
//! plots and the h5py reader live in the pure-Python package `python/climcal/`.
//!
//! Rust-side work runs with the GIL released (`py.detach`); Python models take
//! the GIL only while their Python code runs.

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

mod builtin;
mod chain;
mod distribution;
mod emcee;
#[cfg(feature = "hdf5")]
mod emcee_h5;
mod fingerprint;
mod likelihood;
mod optimizer;
mod parameter;
mod projection;
#[cfg(feature = "rscm")]
mod rscm;
mod runner;
mod sampler;
mod target;

/// The one place where engine errors become Python exceptions: bad input is a
/// `ValueError`, I/O an `OSError`, an interrupted run `KeyboardInterrupt`, and the
/// rest `RuntimeError`; the message is the engine's (it names the bad input and
/// the fix).
///
/// Messages are worded for Python: no "config error:" prefix (that names the CLI's
/// run file), and initial walkers point at `initialize(...)`, not `init = "prior"`.
pub(crate) fn to_py_err(e: crate::Error) -> PyErr {
    match &e {
        crate::Error::Io(_) => PyOSError::new_err(e.to_string()),
        crate::Error::Interrupted(_) => PyKeyboardInterrupt::new_err(e.to_string()),
        crate::Error::Config(m) => PyValueError::new_err(m.clone()),
        crate::Error::BadInitialPositions { n, walkers } => PyValueError::new_err(format!(
            "{n} initial walker(s) have log-probability -inf or NaN (outside the prior support, or the model failed \
             or does not cover the observation times): walkers {walkers:?}; start them elsewhere \
             (initialize(\"ball\", center=..., radius=...) inside the support, or initialize(\"prior\"))"
        )),
        _ if e.is_bad_input() => PyValueError::new_err(e.to_string()),
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

/// `Result` conversion shorthand.
pub(crate) trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

#[pymodule]
#[pyo3(name = "_lib")]
fn climcal_lib(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("HAS_HDF5", cfg!(feature = "hdf5"))?;
    m.add("HAS_RSCM", cfg!(feature = "rscm"))?;
    distribution::register(m)?;
    parameter::register(m)?;
    target::register(m)?;
    likelihood::register(m)?;
    runner::register(m)?;
    #[cfg(feature = "rscm")]
    rscm::register(m)?;
    sampler::register(m)?;
    chain::register(m)?;
    optimizer::register(m)?;
    emcee::register(m)?;
    #[cfg(feature = "hdf5")]
    emcee_h5::register(m)?;
    projection::register(m)?;
    Ok(())
}
