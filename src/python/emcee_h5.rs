//! `EmceeH5Writer`: the writes of `climcal.emcee.backends.HDFBackend` (emcee's HDF5
//! layout), on the core's [`crate::storage::emcee::EmceeWriter`].
//!
//! Python passes each array as a flat `uint8` view of its C-contiguous bytes (no
//! copy) with a JSON description of its numpy dtype
//! ([`crate::storage::emcee::NpType`]); the file I/O runs with the GIL released.

use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::IntoPyResult;
use crate::storage::emcee::{Commit, EmceeWriter, NpType, RawRows, StateValue};

fn dtype(text: &str) -> PyResult<NpType> {
    NpType::from_json(text).map_err(PyValueError::new_err)
}

fn bytes<'a>(a: &'a PyReadonlyArray1<'_, u8>, what: &str) -> PyResult<&'a [u8]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("{what}: the bytes must be contiguous")))
}

fn state_value(v: &Bound<'_, PyAny>) -> PyResult<StateValue> {
    if let Ok(s) = v.extract::<String>() {
        return Ok(StateValue::Text(s));
    }
    if let Ok(a) = v.extract::<PyReadonlyArray1<'_, u32>>() {
        return Ok(StateValue::U32s(a.as_array().to_vec()));
    }
    if let Ok(x) = v.extract::<i64>() {
        return Ok(StateValue::Int(x));
    }
    if let Ok(x) = v.extract::<f64>() {
        return Ok(StateValue::Float(x));
    }
    Err(PyTypeError::new_err(format!(
        "random state value {} is not text, a uint32 array, an int or a float",
        v.repr().map(|r| r.to_string()).unwrap_or_default()
    )))
}

/// Writer of one emcee-layout group (native part of ``climcal.emcee.backends.HDFBackend``).
#[pyclass(name = "EmceeH5Writer", module = "climcal._lib")]
pub struct PyEmceeH5Writer {
    inner: EmceeWriter,
}

#[pymethods]
impl PyEmceeH5Writer {
    /// Group ``name`` of ``filename``; ``gzip``: the gzip level of the row
    /// datasets (``None``: uncompressed).
    #[new]
    #[pyo3(signature = (filename, name, gzip=None))]
    fn new(filename: std::path::PathBuf, name: &str, gzip: Option<u8>) -> PyResult<Self> {
        if gzip.is_some_and(|l| l > 9) {
            return Err(PyValueError::new_err("gzip level must be 0 to 9"));
        }
        Ok(Self { inner: EmceeWriter::new(&filename, name, gzip) })
    }

    /// Create (or empty) the group, as emcee's ``reset``.
    fn reset(&mut self, py: Python<'_>, nwalkers: usize, ndim: usize, dtype_json: &str, version: &str) -> PyResult<()> {
        let t = dtype(dtype_json)?;
        let w = &mut self.inner;
        py.detach(|| w.reset(nwalkers, ndim, &t, version)).py()
    }

    /// Room for ``ngrow`` more steps; ``blob_dtype_json``: the blobs' element type
    /// (creates the ``blobs`` dataset the first time).
    #[pyo3(signature = (ngrow, blob_dtype_json=None))]
    fn grow(&mut self, py: Python<'_>, ngrow: usize, blob_dtype_json: Option<&str>) -> PyResult<()> {
        let t = blob_dtype_json.map(dtype).transpose()?;
        let w = &mut self.inner;
        py.detach(|| w.grow(ngrow, t.as_ref())).py()
    }

    /// Append and commit ``n`` rows; returns the new ``iteration``.
    #[pyo3(signature = (n, chain, chain_dtype, log_prob, log_prob_dtype, blobs, blob_dtype, accepted, random_state, move_state, keep_margin))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        py: Python<'_>,
        n: usize,
        chain: PyReadonlyArray1<'_, u8>,
        chain_dtype: &str,
        log_prob: PyReadonlyArray1<'_, u8>,
        log_prob_dtype: &str,
        blobs: Option<PyReadonlyArray1<'_, u8>>,
        blob_dtype: Option<&str>,
        accepted: PyReadonlyArray1<'_, bool>,
        random_state: Option<Bound<'_, PyAny>>,
        move_state: Option<String>,
        keep_margin: bool,
    ) -> PyResult<usize> {
        let (ct, lt) = (dtype(chain_dtype)?, dtype(log_prob_dtype)?);
        let bt = match (&blobs, blob_dtype) {
            (Some(_), Some(d)) => Some(dtype(d)?),
            (None, _) => None,
            (Some(_), None) => return Err(PyValueError::new_err("blobs need their dtype")),
        };
        let rs = match random_state {
            Some(r) if !r.is_none() => Some(r.try_iter()?.map(|v| state_value(&v?)).collect::<PyResult<Vec<_>>>()?),
            _ => None,
        };
        if !accepted.is_c_contiguous() {
            return Err(PyValueError::new_err("accepted must be contiguous"));
        }
        let c = Commit {
            n,
            chain: RawRows { dtype: &ct, bytes: bytes(&chain, "chain")? },
            log_prob: RawRows { dtype: &lt, bytes: bytes(&log_prob, "log_prob")? },
            blobs: match (&blobs, &bt) {
                (Some(b), Some(t)) => Some(RawRows { dtype: t, bytes: bytes(b, "blobs")? }),
                _ => None,
            },
            accepted: accepted.as_slice()?,
            random_state: rs,
            move_state: move_state.as_deref(),
            keep_margin,
        };
        let w = &mut self.inner;
        py.detach(|| w.append(&c)).py()
    }

    /// Give back the margin kept for live readers.
    fn trim(&mut self, py: Python<'_>) -> PyResult<()> {
        let w = &mut self.inner;
        py.detach(|| w.trim()).py()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEmceeH5Writer>()
}
