//! Prior distributions: `Distribution` (base) and `Uniform`, `Normal`, `LogNormal`,
//! `TruncatedNormal`, `Bound` (subclasses).

use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;
use rand::SeedableRng;

use super::IntoPyResult;
use crate::distribution::{Distribution, PriorSpec};

/// A seeded generator for one-off draws (`seed=None` draws a seed from the OS).
pub(crate) fn rng_from_seed(seed: Option<u64>) -> rand_pcg::Pcg64 {
    match seed {
        Some(s) => crate::sampler::rng::walker_rng(s, 0),
        None => rand_pcg::Pcg64::from_os_rng(),
    }
}

/// A one-dimensional prior distribution (base class).
///
/// Build one with `Uniform`, `Normal`, `LogNormal`, `TruncatedNormal` or `Bound`,
/// or from a specification dict with `Distribution.from_spec`.
#[pyclass(name = "Distribution", module = "climcal._lib", subclass, frozen)]
#[derive(Clone)]
pub struct PyDistribution {
    pub(crate) spec: PriorSpec,
    pub(crate) dist: Arc<dyn Distribution>,
}

impl PyDistribution {
    pub(crate) fn from_spec_checked(spec: PriorSpec) -> PyResult<Self> {
        let dist = spec.build().py()?;
        Ok(Self { spec, dist })
    }

    /// A Python object of the matching subclass (`Normal`, …).
    pub(crate) fn into_py_subclass(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let init = PyClassInitializer::from(self.clone());
        match &self.spec {
            PriorSpec::Uniform { .. } => Py::new(py, init.add_subclass(PyUniform))?.into_py_any(py),
            PriorSpec::Normal { .. } => Py::new(py, init.add_subclass(PyNormal))?.into_py_any(py),
            PriorSpec::LogNormal { .. } => Py::new(py, init.add_subclass(PyLogNormal))?.into_py_any(py),
            PriorSpec::TruncatedNormal { .. } => Py::new(py, init.add_subclass(PyTruncatedNormal))?.into_py_any(py),
            PriorSpec::Bound { .. } => Py::new(py, init.add_subclass(PyBound))?.into_py_any(py),
        }
    }
}

/// Parse a spec dict (`{"dist": "normal", "mean": 0, "std": 1}`) through JSON.
pub(crate) fn spec_from_dict(obj: &Bound<'_, PyAny>) -> PyResult<PriorSpec> {
    let json = obj.py().import("json")?.call_method1("dumps", (obj,))?;
    let text: String = json.extract()?;
    serde_json::from_str(&text).map_err(|e| {
        PyValueError::new_err(format!(
            "invalid prior specification {text}: {e}; expected e.g. {{\"dist\": \"normal\", \"mean\": 3.0, \"std\": 0.5}} \
             with dist one of uniform, normal, log_normal, truncated_normal, bound"
        ))
    })
}

/// A prior from a `Distribution` or a spec dict.
pub(crate) fn prior_from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<PyDistribution> {
    if let Ok(d) = obj.cast::<PyDistribution>() {
        return Ok(d.get().clone());
    }
    if obj.is_instance_of::<PyDict>() {
        return PyDistribution::from_spec_checked(spec_from_dict(obj)?);
    }
    Err(PyTypeError::new_err(format!(
        "{what}: expected a climcal distribution (e.g. climcal.Normal(3.0, 0.5)) or a spec dict, got {}",
        obj.get_type().name()?
    )))
}

fn spec_to_dict<'py>(py: Python<'py>, spec: &PriorSpec) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(spec).expect("PriorSpec serialises");
    py.import("json")?.call_method1("loads", (text,))
}

/// Apply `f` to a float or element-wise to an array.
fn map_values<'py>(x: &Bound<'py, PyAny>, f: impl Fn(f64) -> f64) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    if let Ok(v) = x.extract::<f64>() {
        return f(v).into_bound_py_any(py);
    }
    let a = py
        .import("numpy")?
        .call_method1("asarray", (x, "float64"))
        .map_err(|_| PyTypeError::new_err("expected a float or an array of floats"))?;
    let arr = a.extract::<PyReadonlyArrayDyn<'py, f64>>().map_err(PyErr::from)?;
    let out = arr.as_array().mapv(f);
    Ok(numpy::PyArray::from_owned_array(py, out).into_any())
}

#[pymethods]
impl PyDistribution {
    /// Build from a specification dict, as written in run files:
    /// ``{"dist": "normal", "mean": 3.0, "std": 0.5}``.
    #[staticmethod]
    fn from_spec(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        PyDistribution::from_spec_checked(spec_from_dict(spec)?)?.into_py_subclass(py)
    }

    /// The specification dict (inverse of ``from_spec``).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spec_to_dict(py, &self.spec)
    }

    /// Natural log of the normalised density (``-inf`` outside the support); float or array.
    fn ln_pdf<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.dist.clone();
        map_values(x, move |v| d.ln_pdf(v))
    }

    /// Density; float or array.
    fn pdf<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.dist.clone();
        map_values(x, move |v| d.ln_pdf(v).exp())
    }

    /// Cumulative distribution function; float or array.
    fn cdf<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let d = self.dist.clone();
        map_values(x, move |v| d.cdf(v))
    }

    /// ``n`` independent draws as a 1-D array (``seed=None`` draws a seed from the OS).
    #[pyo3(signature = (n, seed=None))]
    fn sample<'py>(&self, py: Python<'py>, n: usize, seed: Option<u64>) -> Bound<'py, PyArray1<f64>> {
        let mut rng = rng_from_seed(seed);
        PyArray1::from_vec(py, self.dist.sample(n, &mut rng))
    }

    /// Support ``(lower, upper)``, infinite where unbounded.
    #[getter]
    fn bounds(&self) -> (f64, f64) {
        self.dist.bounds()
    }

    fn __repr__(&self) -> String {
        self.spec.to_string()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyDistribution>().map(|o| o.get().spec == self.spec).unwrap_or(false)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&self.spec).unwrap_or_default().hash(&mut h);
        h.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyAny>,))> {
        let py = slf.py();
        let from_spec = py.import("climcal._lib")?.getattr("Distribution")?.getattr("from_spec")?;
        Ok((from_spec, (spec_to_dict(py, &slf.get().spec)?,)))
    }
}

/// Uniform prior on ``[lower, upper]``.
///
/// Parameters
/// ----------
/// lower, upper : float
///     Finite limits with ``lower < upper``.
#[pyclass(name = "Uniform", module = "climcal._lib", extends = PyDistribution, frozen)]
pub struct PyUniform;

#[pymethods]
impl PyUniform {
    #[new]
    fn new(lower: f64, upper: f64) -> PyResult<(Self, PyDistribution)> {
        Ok((Self, PyDistribution::from_spec_checked(PriorSpec::Uniform { lower, upper })?))
    }
}

/// Normal (Gaussian) prior.
///
/// Parameters
/// ----------
/// mean : float
/// std : float
///     Standard deviation σ > 0.
#[pyclass(name = "Normal", module = "climcal._lib", extends = PyDistribution, frozen)]
pub struct PyNormal;

#[pymethods]
impl PyNormal {
    #[new]
    fn new(mean: f64, std: f64) -> PyResult<(Self, PyDistribution)> {
        Ok((Self, PyDistribution::from_spec_checked(PriorSpec::Normal { mean, std })?))
    }
}

/// Log-normal prior: ``ln x ~ Normal(mu, sigma)``.
///
/// Parameters
/// ----------
/// mu : float
///     Mean of ``ln x``.
/// sigma : float
///     Standard deviation of ``ln x``, > 0.
#[pyclass(name = "LogNormal", module = "climcal._lib", extends = PyDistribution, frozen)]
pub struct PyLogNormal;

#[pymethods]
impl PyLogNormal {
    #[new]
    fn new(mu: f64, sigma: f64) -> PyResult<(Self, PyDistribution)> {
        Ok((Self, PyDistribution::from_spec_checked(PriorSpec::LogNormal { mu, sigma })?))
    }
}

/// Normal prior truncated to ``[lower, upper]`` and renormalised.
///
/// Parameters
/// ----------
/// mean, std : float
///     Of the parent normal (``std > 0``).
/// lower, upper : float
///     Limits (default ``-inf`` and ``inf``), ``lower < upper``.
#[pyclass(name = "TruncatedNormal", module = "climcal._lib", extends = PyDistribution, frozen)]
pub struct PyTruncatedNormal;

#[pymethods]
impl PyTruncatedNormal {
    #[new]
    #[pyo3(signature = (mean, std, lower=f64::NEG_INFINITY, upper=f64::INFINITY))]
    fn new(mean: f64, std: f64, lower: f64, upper: f64) -> PyResult<(Self, PyDistribution)> {
        Ok((Self, PyDistribution::from_spec_checked(PriorSpec::TruncatedNormal { mean, std, lower, upper })?))
    }
}

/// Any distribution restricted to ``[lower, upper]`` and renormalised.
///
/// Parameters
/// ----------
/// dist : Distribution
///     The parent distribution.
/// lower, upper : float
///     Limits (default ``-inf`` and ``inf``), ``lower < upper``.
#[pyclass(name = "Bound", module = "climcal._lib", extends = PyDistribution, frozen)]
pub struct PyBound;

#[pymethods]
impl PyBound {
    #[new]
    #[pyo3(signature = (dist, lower=f64::NEG_INFINITY, upper=f64::INFINITY))]
    fn new(dist: &Bound<'_, PyAny>, lower: f64, upper: f64) -> PyResult<(Self, PyDistribution)> {
        let inner = prior_from_py(dist, "Bound(dist=...)")?;
        let spec = PriorSpec::Bound { inner: Box::new(inner.spec), lower, upper };
        Ok((Self, PyDistribution::from_spec_checked(spec)?))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDistribution>()?;
    m.add_class::<PyUniform>()?;
    m.add_class::<PyNormal>()?;
    m.add_class::<PyLogNormal>()?;
    m.add_class::<PyTruncatedNormal>()?;
    m.add_class::<PyBound>()?;
    Ok(())
}
