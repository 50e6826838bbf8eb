//! `AR1Likelihood` (AR(1)-correlated residuals, the run file's `kind = "ar1"`) and
//! the one place where a Python likelihood argument becomes the engine's.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::target::{PyGaussianLikelihood, PyTarget};
use crate::likelihood::ar1::{Ar1Likelihood, Setting};
use crate::likelihood::LikelihoodFn;

/// A number or the name of a sampled parameter, from Python.
fn setting(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Setting> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("AR1Likelihood: {what} must be a number or a parameter name, got a bool")));
    }
    if obj.is_instance_of::<PyString>() {
        let name: String = obj.extract()?;
        if name.is_empty() {
            return Err(PyValueError::new_err(format!("AR1Likelihood: {what} is an empty parameter name")));
        }
        return Ok(Setting::Param(name));
    }
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() || obj.hasattr("__float__")? {
        return Ok(Setting::Fixed(obj.extract::<f64>()?));
    }
    Err(PyTypeError::new_err(format!(
        "AR1Likelihood: {what} must be a number or the name of a sampled parameter (str), got {}",
        obj.get_type().name()?
    )))
}

fn setting_to_py<'py>(py: Python<'py>, s: &Setting) -> PyResult<Bound<'py, PyAny>> {
    Ok(match s {
        Setting::Fixed(x) => PyFloat::new(py, *x).into_any(),
        Setting::Param(p) => PyString::new(py, p).into_any(),
    })
}

/// Gaussian errors with AR(1)-correlated residuals per target variable: the exact
/// O(n) log-likelihood of ``r = model − obs`` with covariance
/// ``Σ_ij = s_i s_j ρ^|t_i − t_j|``, ``s_i² = σ_i² + (relative_error · obs_i)² + σ_extra²``
/// (gaps in the times are exact). The same likelihood as a run file's
/// ``[likelihood] kind = "ar1"``, with the same settings and defaults.
///
/// Parameters
/// ----------
/// rho : float or str, default 0.0
///     Lag-1 autocorrelation per unit of time, in ``[0, 1)``, of every variable's
///     residuals; or the name of a parameter of the ``ParameterSet`` (give it a prior
///     inside ``[0, 1)``) sampled with the model's.
/// sigma_extra : float or str, optional
///     Extra error (in each variable's unit) added in quadrature to every σ, ≥ 0;
///     a number or a parameter name. Default none.
/// relative_error : float, default 0.0
///     As ``GaussianLikelihood``'s.
/// variables : dict, optional
///     ``{variable: {"rho": ..., "sigma_extra": ...}}``: per-variable settings; an
///     unset key falls back to ``rho`` / ``sigma_extra`` above (``{"rho": 0.0}``
///     keeps a variable's errors independent).
///
/// Examples
/// --------
/// >>> import climcal
/// >>> lik = climcal.AR1Likelihood(rho="rho_T", variables={"Ocean Heat Content": {"rho": 0.0}})
/// >>> lik.parameters
/// ['rho_T']
#[pyclass(name = "AR1Likelihood", module = "climcal._lib", frozen)]
pub struct PyAr1Likelihood {
    pub(crate) inner: Arc<Ar1Likelihood>,
    rho: Setting,
    sigma_extra: Option<Setting>,
    variables: Vec<(String, Option<Setting>, Option<Setting>)>,
}

#[pymethods]
impl PyAr1Likelihood {
    #[new]
    #[pyo3(signature = (rho=None, sigma_extra=None, relative_error=0.0, variables=None))]
    fn new(
        rho: Option<&Bound<'_, PyAny>>,
        sigma_extra: Option<&Bound<'_, PyAny>>,
        relative_error: f64,
        variables: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let rho = rho.map(|r| setting(r, "rho")).transpose()?.unwrap_or(Setting::Fixed(0.0));
        let sigma_extra = sigma_extra.filter(|s| !s.is_none()).map(|s| setting(s, "sigma_extra")).transpose()?;
        let mut per = Vec::new();
        if let Some(vars) = variables {
            for (k, v) in vars.iter() {
                let name: String = k.extract().map_err(|_| {
                    PyTypeError::new_err(
                        "AR1Likelihood: variables= maps variable names (str) to {'rho': ..., 'sigma_extra': ...}",
                    )
                })?;
                let d = v.cast::<PyDict>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "AR1Likelihood: variables['{name}'] must be a dict like {{'rho': 0.5, 'sigma_extra': 0.05}}"
                    ))
                })?;
                let (mut r, mut s) = (None, None);
                for (key, val) in d.iter() {
                    let key: String = key.extract()?;
                    match key.as_str() {
                        "rho" => r = Some(setting(&val, &format!("variables['{name}']['rho']"))?),
                        "sigma_extra" if val.is_none() => {}
                        "sigma_extra" => s = Some(setting(&val, &format!("variables['{name}']['sigma_extra']"))?),
                        other => {
                            return Err(PyValueError::new_err(format!(
                                "AR1Likelihood: variables['{name}'] has an unknown key '{other}'; the keys are 'rho' and 'sigma_extra'"
                            )))
                        }
                    }
                }
                per.push((name, r, s));
            }
        }
        let inner = Ar1Likelihood::with_defaults(relative_error, Some(rho.clone()), sigma_extra.clone(), per.clone()).map_err(
            |e| match e {
                crate::Error::Config(m) => PyValueError::new_err(m.replace("[likelihood] ", "AR1Likelihood: ")),
                e => super::to_py_err(e),
            },
        )?;
        Ok(Self { inner: Arc::new(inner), rho, sigma_extra, variables: per })
    }

    /// ``rho`` for every variable without its own (a number or a parameter name).
    #[getter]
    fn rho<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        setting_to_py(py, &self.rho)
    }

    /// ``sigma_extra`` for every variable without its own, or ``None``.
    #[getter]
    fn sigma_extra<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.sigma_extra.as_ref().map(|s| setting_to_py(py, s)).transpose()
    }

    /// The relative error.
    #[getter]
    fn relative_error(&self) -> f64 {
        self.inner.relative_error()
    }

    /// The per-variable settings as given.
    #[getter]
    fn variables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (n, r, s) in &self.variables {
            let d = PyDict::new(py);
            if let Some(r) = r {
                d.set_item("rho", setting_to_py(py, r)?)?;
            }
            if let Some(s) = s {
                d.set_item("sigma_extra", setting_to_py(py, s)?)?;
            }
            out.set_item(n, d)?;
        }
        Ok(out)
    }

    /// Names of the parameters this likelihood samples (need priors in the ``ParameterSet``).
    #[getter]
    fn parameters(&self) -> Vec<String> {
        self.inner.param_names()
    }

    fn __repr__(&self) -> String {
        format!("AR1Likelihood({})", self.inner.describe().trim_start_matches("ar1 "))
    }
}

/// The engine's likelihood for a Python ``likelihood=`` argument (default
/// ``GaussianLikelihood()``), checked against the target, and how the chain file's
/// fingerprint names it.
pub(crate) fn likelihood_of(obj: Option<&Bound<'_, PyAny>>, target: &PyTarget) -> PyResult<(Arc<dyn LikelihoodFn>, String)> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok((Arc::new(crate::likelihood::GaussianLikelihood::default()), "gaussian relative_error=0".into()));
    };
    if let Ok(g) = obj.cast::<PyGaussianLikelihood>() {
        let g = g.get().inner;
        return Ok((Arc::new(g), format!("gaussian relative_error={}", g.relative_error)));
    }
    if let Ok(a) = obj.cast::<PyAr1Likelihood>() {
        let a = a.get();
        let unknown = a.inner.unknown_variables(&target.inner);
        if !unknown.is_empty() {
            return Err(PyValueError::new_err(format!(
                "AR1Likelihood: variables= names {unknown:?}, which are not target variables; the target has {:?}",
                target.inner.variables().keys().collect::<Vec<_>>()
            )));
        }
        return Ok((a.inner.clone(), a.inner.describe()));
    }
    Err(PyTypeError::new_err(format!(
        "likelihood must be a climcal.GaussianLikelihood or climcal.AR1Likelihood, got {}",
        obj.get_type().name()?
    )))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAr1Likelihood>()?;
    Ok(())
}
