//! `ParameterSet`: named priors with optional transforms.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::IntoPyObjectExt;

use super::distribution::{prior_from_py, rng_from_seed, PyDistribution};
use super::IntoPyResult;
use crate::parameter::{ParameterSet, Transform};

pub(crate) fn parse_transform(s: &str) -> PyResult<Transform> {
    match s.to_ascii_lowercase().as_str() {
        "identity" | "none" | "" => Ok(Transform::Identity),
        "log" => Ok(Transform::Log),
        "logit" => Ok(Transform::Logit),
        other => Err(PyValueError::new_err(format!("unknown transform '{other}'; use one of 'identity', 'log', 'logit'"))),
    }
}

fn transform_name(t: Transform) -> &'static str {
    match t {
        Transform::Identity => "identity",
        Transform::Log => "log",
        Transform::Logit => "logit",
    }
}

/// An ordered set of named parameters with priors.
///
/// Parameters
/// ----------
/// priors : dict, optional
///     ``{name: prior}`` in order. A prior is a distribution (``climcal.Normal(3, 0.5)``),
///     a spec dict (``{"dist": "normal", "mean": 3, "std": 0.5}``), or a dict
///     ``{"prior": ..., "transform": "log", "unit": "K"}``. Default: empty; add
///     parameters with ``.add``.
///
/// Notes
/// -----
/// With ``transform="log"`` (positive parameters) or ``"logit"`` (bounded ones) the
/// sampler moves in the transformed space; chains store physical values and the
/// prior includes the log-Jacobian.
///
/// Examples
/// --------
/// >>> import climcal
/// >>> p = climcal.ParameterSet({"ecs": climcal.Normal(3.0, 0.5)}).add("kappa", climcal.Uniform(0.1, 2.0))
/// >>> p.names
/// ['ecs', 'kappa']
#[pyclass(name = "ParameterSet", module = "climcal._lib", subclass)]
#[derive(Clone)]
pub struct PyParameterSet {
    pub(crate) inner: ParameterSet,
}

impl PyParameterSet {
    fn push(&mut self, name: &str, prior: &Bound<'_, PyAny>, transform: &str, unit: &str) -> PyResult<()> {
        let (prior, transform, unit) = if let Ok(d) = prior.cast::<PyDict>() {
            if let Some(p) = d.get_item("prior")? {
                let tr: String = match d.get_item("transform")? {
                    Some(t) => t.extract()?,
                    None => transform.to_string(),
                };
                let un: String = match d.get_item("unit")? {
                    Some(u) => u.extract()?,
                    None => unit.to_string(),
                };
                (prior_from_py(&p, &format!("parameter '{name}'"))?, tr, un)
            } else {
                (prior_from_py(prior, &format!("parameter '{name}'"))?, transform.to_string(), unit.to_string())
            }
        } else {
            (prior_from_py(prior, &format!("parameter '{name}'"))?, transform.to_string(), unit.to_string())
        };
        self.inner.push(name, prior.dist, parse_transform(&transform)?, &unit).py()
    }

    pub(crate) fn check_theta(&self, n: usize) -> PyResult<()> {
        if n != self.inner.len() {
            return Err(PyValueError::new_err(format!(
                "expected {} parameter values ({:?}), found {n}",
                self.inner.len(),
                self.inner.names()
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl PyParameterSet {
    #[new]
    #[pyo3(signature = (priors=None))]
    fn new(priors: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut s = Self { inner: ParameterSet::new() };
        if let Some(p) = priors {
            let d = p.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "ParameterSet(priors): expected a dict {{name: prior}}, got {}",
                    p.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
            for (k, v) in d.iter() {
                let name: String = k
                    .cast::<PyString>()
                    .map_err(|_| PyTypeError::new_err("ParameterSet(priors): parameter names must be strings"))?
                    .to_string();
                s.push(&name, &v, "identity", "")?;
            }
        }
        Ok(s)
    }

    /// Add a parameter and return the set (fluent).
    ///
    /// Parameters
    /// ----------
    /// name : str
    /// prior : Distribution or dict
    /// transform : {"identity", "log", "logit"}, default "identity"
    /// unit : str, default ""
    #[pyo3(signature = (name, prior, transform="identity", unit=""))]
    fn add<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        prior: &Bound<'py, PyAny>,
        transform: &str,
        unit: &str,
    ) -> PyResult<Bound<'py, Self>> {
        slf.borrow_mut().push(name, prior, transform, unit)?;
        Ok(slf)
    }

    /// Parameter names, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    /// ``{name: (lower, upper)}``: the support of each prior (infinite where unbounded).
    #[getter]
    fn bounds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, b) in self.inner.names().into_iter().zip(self.inner.bounds()) {
            d.set_item(n, b)?;
        }
        Ok(d)
    }

    /// ``{name: Distribution}``.
    #[getter]
    fn priors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for def in self.inner.defs() {
            let spec = def.prior.spec().ok_or_else(|| PyValueError::new_err("prior has no specification"))?;
            d.set_item(&def.name, PyDistribution { spec, dist: def.prior.clone() }.into_py_subclass(py)?)?;
        }
        Ok(d)
    }

    /// ``{name: transform}``.
    #[getter]
    fn transforms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for def in self.inner.defs() {
            d.set_item(&def.name, transform_name(def.transform))?;
        }
        Ok(d)
    }

    /// ``{name: unit}``.
    #[getter]
    fn units<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for def in self.inner.defs() {
            d.set_item(&def.name, &def.unit)?;
        }
        Ok(d)
    }

    /// ``n`` draws from the priors (physical values), shape ``(n, n_params)``.
    ///
    /// Parameters
    /// ----------
    /// n : int
    /// seed : int, optional
    ///     Default ``None`` draws a seed from the OS.
    #[pyo3(signature = (n, seed=None))]
    fn sample<'py>(&self, py: Python<'py>, n: usize, seed: Option<u64>) -> Bound<'py, PyArray2<f64>> {
        let mut rng = rng_from_seed(seed);
        let a = self.inner.sample(n, &mut rng);
        let d = a.ncols();
        let (v, _) = a.into_raw_vec_and_offset();
        PyArray1::from_vec(py, v).reshape([n, d]).expect("n × d values")
    }

    /// Log-prior of physical values: a float for one vector (or dict by name), an
    /// array for a 2-D array of vectors. ``-inf`` outside the support.
    fn ln_prior<'py>(&self, py: Python<'py>, theta: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(d) = theta.cast::<PyDict>() {
            let mut v = Vec::with_capacity(self.inner.len());
            for n in self.inner.names() {
                let x = d.get_item(&n)?.ok_or_else(|| PyKeyError::new_err(format!("ln_prior: no value for parameter '{n}'")))?;
                v.push(x.extract::<f64>()?);
            }
            self.check_theta(d.len())?;
            return self.inner.ln_prior(&v).into_bound_py_any(py);
        }
        let np = py.import("numpy")?;
        let arr = np.call_method1("asarray", (theta, "float64"))?;
        let ndim: usize = arr.getattr("ndim")?.extract()?;
        match ndim {
            1 => {
                let a: PyReadonlyArray1<f64> = arr.extract()?;
                let s = a.as_slice()?;
                self.check_theta(s.len())?;
                self.inner.ln_prior(s).into_bound_py_any(py)
            }
            2 => {
                let a: PyReadonlyArray2<f64> = arr.extract()?;
                let a = a.as_array();
                self.check_theta(a.ncols())?;
                let out: Vec<f64> = a.rows().into_iter().map(|r| self.inner.ln_prior(&r.to_vec())).collect();
                Ok(PyArray1::from_vec(py, out).into_any())
            }
            _ => Err(PyValueError::new_err(format!("ln_prior: expected a 1-D or 2-D array, got {ndim}-D"))),
        }
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.index_of(name).is_some()
    }

    fn __repr__(&self) -> String {
        let items: Vec<String> = self
            .inner
            .defs()
            .map(|d| {
                let spec = d.prior.spec().map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                match d.transform {
                    Transform::Identity => format!("{}: {spec}", d.name),
                    t => format!("{}: {spec} [{}]", d.name, transform_name(t)),
                }
            })
            .collect();
        format!("ParameterSet({{{}}})", items.join(", "))
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let d = PyDict::new(py);
        for def in self.inner.defs() {
            let spec = def.prior.spec().ok_or_else(|| PyValueError::new_err("prior has no specification"))?;
            let e = PyDict::new(py);
            e.set_item("prior", PyDistribution { spec, dist: def.prior.clone() }.into_py_subclass(py)?)?;
            e.set_item("transform", transform_name(def.transform))?;
            e.set_item("unit", &def.unit)?;
            d.set_item(&def.name, e)?;
        }
        PyTuple::new(py, [d])
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyParameterSet>()
}
