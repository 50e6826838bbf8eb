//! `Chain` (native part) and the diagnostics as free functions over arrays.
//!
//! Arrays handed to Python are read-only views into the chain's own buffers (no
//! copy); they keep the chain alive.

use numpy::ndarray as nd; // numpy's ndarray (may differ from the crate's)
use numpy::{PyArray, PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::diagnostics;
use crate::sampler::Chain;

/// Chain of one run (native part; ``climcal.Chain`` wraps it).
#[pyclass(name = "NativeChain", module = "climcal._lib", frozen)]
pub struct PyChain {
    pub(crate) inner: Chain,
    pub(crate) blob_layout: Vec<(String, Vec<f64>)>,
    /// Derived quantities: the last `derived.len()` blob columns.
    pub(crate) derived: Vec<crate::derived::DerivedQuantity>,
}

impl PyChain {
    pub(crate) fn new(inner: Chain, blob_layout: Vec<(String, Vec<f64>)>) -> Self {
        Self { inner, blob_layout, derived: Vec::new() }
    }

    /// Name the last blob columns as these derived quantities.
    pub(crate) fn with_derived(mut self, derived: Vec<crate::derived::DerivedQuantity>) -> Self {
        self.derived = derived;
        self
    }
}

/// A read-only numpy view of `data` with `shape`, owned by `owner`.
fn view<'py, D: nd::Dimension>(owner: &Bound<'py, PyChain>, data: &[f64], shape: D) -> PyResult<Bound<'py, PyAny>> {
    let v = nd::ArrayView::from_shape(shape, data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    // SAFETY: the chain is frozen (never mutated) and `owner` keeps it alive as
    // the array's base; the array is made read-only below.
    let arr = unsafe { PyArray::borrow_from_array(&v, owner.clone().into_any()) };
    arr.call_method1("setflags", (false,))?;
    Ok(arr.into_any())
}

#[pymethods]
impl PyChain {
    /// Samples (physical values), ``(rows, walkers, ndim)``, read-only, no copy.
    #[getter]
    fn samples<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let c = &slf.get().inner;
        view(slf, c.samples_raw(), nd::Ix3(c.n_rows(), c.n_walkers(), c.dim()))
    }
    /// Log-probabilities, ``(rows, walkers)``, read-only, no copy.
    #[getter]
    fn log_prob<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let c = &slf.get().inner;
        view(slf, c.ln_probs_raw(), nd::Ix2(c.n_rows(), c.n_walkers()))
    }
    /// Blobs (model values at the observation times), ``(rows, walkers, n_blobs)``.
    #[getter]
    fn blobs<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let c = &slf.get().inner;
        view(slf, c.blobs_raw(), nd::Ix3(c.n_rows(), c.n_walkers(), c.n_blobs()))
    }
    /// Derived quantities stored as the last blob columns: ``[(name, unit, description), ...]``.
    #[getter]
    fn derived_quantities(&self) -> Vec<(String, String, String)> {
        self.derived.iter().map(|q| (q.name.clone(), q.unit.clone(), q.description.clone())).collect()
    }
    /// Blob layout ``[(variable, observation times), ...]``.
    #[getter]
    fn blob_layout<'py>(&self, py: Python<'py>) -> Vec<(String, Bound<'py, PyArray1<f64>>)> {
        self.blob_layout.iter().map(|(n, t)| (n.clone(), PyArray1::from_slice(py, t))).collect()
    }
    /// Accepted proposals per walker (over all steps of the chain).
    #[getter]
    fn accepted<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_slice(py, self.inner.accepted())
    }
    /// Parameter names.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.names().to_vec()
    }
    /// Steps taken in total (including earlier runs of a resumed chain).
    #[getter]
    fn n_steps(&self) -> u64 {
        self.inner.n_steps()
    }
    /// Thinning of the stored rows.
    #[getter]
    fn thin(&self) -> usize {
        self.inner.thin()
    }
    /// Failed evaluations.
    #[getter]
    fn failures(&self) -> u64 {
        self.inner.failures()
    }
    /// ``(wall seconds, evaluations)`` of the run that made this chain.
    #[getter]
    fn run_timing(&self) -> (f64, u64) {
        self.inner.run_timing()
    }
}

/// A contiguous float64 copy-free view (numpy converts when needed).
fn contiguous<'py>(x: &Bound<'py, PyAny>, ndim: usize, what: &str) -> PyResult<(Bound<'py, PyAny>, Vec<usize>)> {
    let np = x.py().import("numpy")?;
    let a = np.call_method1("ascontiguousarray", (x, "float64"))?;
    let arr = a.cast::<numpy::PyArrayDyn<f64>>()?;
    if arr.ndim() != ndim {
        return Err(PyValueError::new_err(format!("{what}: expected a {ndim}-D array, got {}-D", arr.ndim())));
    }
    let shape = arr.shape().to_vec();
    Ok((a, shape))
}

/// emcee's ``integrated_time`` on ``(steps, walkers, ndim)``: ``(tau, ok, message)``;
/// ``ok`` is false when the chain is shorter than ``tol`` τ (``tau`` still holds the estimate).
#[pyfunction]
#[pyo3(signature = (x, c=5.0, tol=50.0))]
fn integrated_time(py: Python<'_>, x: &Bound<'_, PyAny>, c: f64, tol: f64) -> PyResult<(Vec<f64>, bool, String)> {
    let (a, shape) = contiguous(x, 3, "integrated_time")?;
    let arr = a.cast::<numpy::PyArrayDyn<f64>>()?.readonly();
    let data = arr.as_slice()?;
    let v = ndarray::ArrayView3::from_shape((shape[0], shape[1], shape[2]), data)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let r = py.detach(|| diagnostics::integrated_time(v, c, tol));
    Ok(match r {
        Ok(t) => (t, true, String::new()),
        Err(e) => {
            let msg = e.to_string();
            (e.tau, false, msg)
        }
    })
}

fn two_d<R: Send>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    what: &str,
    f: impl Fn(ndarray::ArrayView2<f64>) -> R + Send + Sync,
) -> PyResult<R> {
    let (a, shape) = contiguous(x, 2, what)?;
    let arr = a.cast::<numpy::PyArrayDyn<f64>>()?.readonly();
    let data = arr.as_slice()?;
    let v = ndarray::ArrayView2::from_shape((shape[0], shape[1]), data).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(py.detach(|| f(v)))
}

/// Rank-normalised split R-hat on ``(chains, draws)`` (as ArviZ ``rhat``).
#[pyfunction]
fn rhat(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
    two_d(py, x, "rhat", diagnostics::rhat)
}

/// Bulk effective sample size on ``(chains, draws)`` (as ArviZ ``ess(method="bulk")``).
#[pyfunction]
fn ess_bulk(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<f64> {
    two_d(py, x, "ess_bulk", diagnostics::ess_bulk)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyChain>()?;
    m.add_function(wrap_pyfunction!(integrated_time, m)?)?;
    m.add_function(wrap_pyfunction!(rhat, m)?)?;
    m.add_function(wrap_pyfunction!(ess_bulk, m)?)?;
    Ok(())
}
