//! `Target` (observations) and `GaussianLikelihood`.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::IntoPyResult;
use crate::likelihood::GaussianLikelihood;
use crate::target::Target;

/// A 1-D float64 vector from any array-like (lists, numpy arrays, pandas Series).
pub(crate) fn vec_f64(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    let np = obj.py().import("numpy")?;
    let arr = np
        .call_method1("asarray", (obj, "float64"))
        .map_err(|e| PyValueError::new_err(format!("{what}: cannot convert to an array of floats ({e})")))?;
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(PyValueError::new_err(format!("{what}: expected a 1-D array, got {ndim}-D")));
    }
    let a: PyReadonlyArray1<f64> = arr.extract()?;
    Ok(a.as_array().to_vec())
}

/// Observations to calibrate against: named variables with times, values and
/// 1-σ uncertainties.
///
/// Examples
/// --------
/// >>> import climcal, numpy as np
/// >>> t = climcal.Target().add_variable("tas", [1850, 1851], [0.0, 0.1], [0.1, 0.1])
/// >>> t = t.with_reference_period(1850, 1900)
///
/// See Also
/// --------
/// Target.from_dataframe, Target.from_scmdata
#[pyclass(name = "Target", module = "climcal._lib", subclass)]
#[derive(Clone, Default)]
pub struct PyTarget {
    pub(crate) inner: Target,
}

#[pymethods]
impl PyTarget {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Add an observed variable and return the target (fluent).
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     Must match a model output.
    /// times, values, uncertainties : array-like
    ///     Same length; times strictly increasing; uncertainties (1-σ) finite and > 0.
    fn add_variable<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        times: &Bound<'py, PyAny>,
        values: &Bound<'py, PyAny>,
        uncertainties: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let t = vec_f64(times, &format!("Target.add_variable('{name}') times"))?;
        let v = vec_f64(values, &format!("Target.add_variable('{name}') values"))?;
        let s = vec_f64(uncertainties, &format!("Target.add_variable('{name}') uncertainties"))?;
        slf.borrow_mut().inner.push_variable(name, t, v, s).py()?;
        Ok(slf)
    }

    /// Compare anomalies relative to the mean over ``[start, end]`` (inclusive) and
    /// return the target (fluent). With ``variable`` only that variable gets this
    /// period; otherwise every variable without its own period.
    #[pyo3(signature = (start, end, variable=None))]
    fn with_reference_period<'py>(
        slf: Bound<'py, Self>,
        start: f64,
        end: f64,
        variable: Option<&str>,
    ) -> PyResult<Bound<'py, Self>> {
        {
            let mut me = slf.borrow_mut();
            let t = std::mem::take(&mut me.inner);
            let r = match variable {
                Some(v) => t.clone().with_variable_reference_period(v, start, end),
                None => t.clone().with_reference_period(start, end),
            };
            match r {
                Ok(n) => me.inner = n,
                Err(e) => {
                    me.inner = t;
                    return Err(super::to_py_err(e));
                }
            }
        }
        Ok(slf)
    }

    /// Names of the observed variables, in order.
    #[getter]
    fn variables(&self) -> Vec<String> {
        self.inner.variables().keys().cloned().collect()
    }

    /// Default reference period, or ``None``.
    #[getter]
    fn reference_period(&self) -> Option<(f64, f64)> {
        self.inner.reference_period()
    }

    /// Total number of observed points.
    #[getter]
    fn n_points(&self) -> usize {
        self.inner.n_points()
    }

    /// ``{"times", "values", "uncertainties", "raw_values", "reference_period"}`` of one
    /// variable (``values`` re-baselined when a reference period is set).
    fn get<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let o = self
            .inner
            .get(name)
            .ok_or_else(|| PyKeyError::new_err(format!("no variable '{name}' in the target; it has {:?}", self.variables())))?;
        let d = PyDict::new(py);
        d.set_item("times", PyArray1::from_slice(py, &o.times))?;
        d.set_item("values", PyArray1::from_slice(py, &o.values))?;
        d.set_item("uncertainties", PyArray1::from_slice(py, &o.sigmas))?;
        d.set_item("raw_values", PyArray1::from_slice(py, o.raw_values()))?;
        d.set_item("reference_period", o.reference_period)?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.inner.variables().len()
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.get(name).is_some()
    }

    fn __repr__(&self) -> String {
        let vars: Vec<String> = self.inner.variables().iter().map(|(n, o)| format!("{n}: {} points", o.times.len())).collect();
        match self.inner.reference_period() {
            Some((a, b)) => format!("Target({}; reference period {a}-{b})", vars.join(", ")),
            None => format!("Target({})", vars.join(", ")),
        }
    }
}

/// Independent Gaussian errors.
///
/// The variance of point *i* is ``σ_obs,i² + (relative_error · |obs_i|)²``; the
/// normalising term ``ln(2π v)`` is included.
///
/// Parameters
/// ----------
/// relative_error : float, default 0.0
///     Extra error proportional to the observed value, ≥ 0.
#[pyclass(name = "GaussianLikelihood", module = "climcal._lib", frozen)]
#[derive(Clone, Copy, Default)]
pub struct PyGaussianLikelihood {
    pub(crate) inner: GaussianLikelihood,
}

#[pymethods]
impl PyGaussianLikelihood {
    #[new]
    #[pyo3(signature = (relative_error=0.0))]
    fn new(relative_error: f64) -> PyResult<Self> {
        Ok(Self { inner: GaussianLikelihood::new(relative_error).py()? })
    }

    /// The relative error.
    #[getter]
    fn relative_error(&self) -> f64 {
        self.inner.relative_error
    }

    fn __repr__(&self) -> String {
        format!("GaussianLikelihood(relative_error={})", self.inner.relative_error)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTarget>()?;
    m.add_class::<PyGaussianLikelihood>()?;
    Ok(())
}
