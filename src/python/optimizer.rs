//! `PointEstimator`: point estimates (MAP or maximum likelihood) with the engine's
//! argmin optimisers.

use std::str::FromStr;
use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::parameter::PyParameterSet;
use super::runner::{PyCalls, PyModelRunner};
use super::sampler::build_posterior;
use super::target::PyTarget;
use super::IntoPyResult;
use crate::optimizer::{Objective, OptimizeMethod, OptimizeOptions, PointEstimateResult, PointEstimator};

/// Result of ``PointEstimator.optimize`` (native part).
#[pyclass(name = "PointEstimateResult", module = "climcal._lib", frozen)]
pub struct PyPointEstimateResult {
    inner: PointEstimateResult,
}

#[pymethods]
impl PyPointEstimateResult {
    /// ``{name: value}`` at the best point (physical values).
    #[getter]
    fn best_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.best_params {
            d.set_item(k, *v)?;
        }
        Ok(d)
    }
    /// Log-likelihood at the best point.
    #[getter]
    fn best_likelihood(&self) -> f64 {
        self.inner.best_likelihood
    }
    /// ``ln p(θ) + ln L(θ)`` at the best point (physical prior, no Jacobian).
    #[getter]
    fn best_ln_posterior(&self) -> f64 {
        self.inner.best_ln_posterior
    }
    /// Log-prior at the best point.
    #[getter]
    fn best_ln_prior(&self) -> f64 {
        self.inner.best_ln_prior
    }
    /// The maximised quantity at the best point.
    #[getter]
    fn best_ln_objective(&self) -> f64 {
        self.inner.best_ln_objective
    }
    /// Every evaluated point (physical), ``(n_evals, n_params)``.
    #[getter]
    fn samples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.inner.samples;
        let (n, d) = (s.nrows(), s.ncols());
        let v: Vec<f64> = s.iter().copied().collect();
        Ok(PyArray1::from_vec(py, v).reshape([n, d])?.into_any())
    }
    /// Log-likelihood of each sample (``-inf`` for failures).
    #[getter]
    fn likelihoods<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.likelihoods)
    }
    /// Log-objective of each sample.
    #[getter]
    fn ln_objective<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.ln_objective)
    }
    /// Parameter names.
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names.clone()
    }
    /// Method name.
    #[getter]
    fn method(&self) -> &'static str {
        self.inner.method.name()
    }
    /// Evaluations in total.
    #[getter]
    fn n_evals(&self) -> u64 {
        self.inner.n_evals
    }
    /// Failed evaluations.
    #[getter]
    fn failures(&self) -> u64 {
        self.inner.failures
    }
    /// Wall time (seconds).
    #[getter]
    fn wall_seconds(&self) -> f64 {
        self.inner.wall_seconds
    }
    /// Seed used.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }
    /// Index of the restart that found the best point.
    #[getter]
    fn best_restart(&self) -> usize {
        self.inner.best_restart
    }
    /// Per restart: ``{"index", "best_params", "best_ln_objective", "n_evals", "n_iters", "failures", "termination"}``.
    #[getter]
    fn restarts<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .restarts
            .iter()
            .map(|r| {
                let d = PyDict::new(py);
                d.set_item("index", r.index)?;
                d.set_item("best_params", r.best_params.clone())?;
                d.set_item("best_ln_objective", r.best_ln_objective)?;
                d.set_item("n_evals", r.n_evals)?;
                d.set_item("n_iters", r.n_iters)?;
                d.set_item("failures", r.failures)?;
                d.set_item("termination", r.termination.clone())?;
                Ok(d)
            })
            .collect()
    }
    /// Parameters whose best value sits on a bound of the prior's support.
    #[getter]
    fn at_bounds(&self) -> Vec<String> {
        self.inner.at_bounds.clone()
    }
    /// A human-readable summary.
    fn summary(&self) -> String {
        self.inner.summary()
    }
    fn __repr__(&self) -> String {
        format!(
            "PointEstimateResult(method={}, best_params={:?}, best_likelihood={:.6})",
            self.inner.method.name(),
            self.inner.best_params,
            self.inner.best_likelihood
        )
    }
}

/// Point estimates of a calibration (native part; use ``climcal.PointEstimator``).
#[pyclass(name = "PointEstimator", module = "climcal._lib")]
pub struct PyPointEstimator {
    est: PointEstimator,
    calls: Vec<Arc<PyCalls>>,
}

#[pymethods]
impl PyPointEstimator {
    #[new]
    #[pyo3(signature = (parameters, target, runner, likelihood=None, objective="posterior", threads=None))]
    fn new(
        parameters: PyRef<'_, PyParameterSet>,
        target: PyRef<'_, PyTarget>,
        runner: PyRef<'_, PyModelRunner>,
        likelihood: Option<Bound<'_, PyAny>>,
        objective: &str,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let objective = match objective {
            "posterior" | "map" => Objective::MaxPosterior,
            "likelihood" | "mle" => Objective::MaxLikelihood,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown objective '{other}'; use 'posterior' (MAP) or 'likelihood' (maximum likelihood)"
                )))
            }
        };
        let ((post, executor, calls), _) = build_posterior(&parameters, &target, &runner, likelihood.as_ref(), threads)?;
        let est = PointEstimator::from_posterior(post, objective).with_executor(executor);
        Ok(Self { est, calls })
    }

    /// Optimise. ``method``: ``"lbfgs"`` (alias ``"L-BFGS"``), ``"nelder-mead"``,
    /// ``"particle-swarm"``, ``"random"`` / ``"random-search[:N]"``.
    #[pyo3(signature = (method="lbfgs", n_restarts=4, max_iters=None, tolerance=1e-6, seed=0, n_samples=None, keep_samples=true))]
    #[allow(clippy::too_many_arguments)]
    fn optimize(
        &self,
        py: Python<'_>,
        method: &str,
        n_restarts: usize,
        max_iters: Option<u64>,
        tolerance: f64,
        seed: u64,
        n_samples: Option<usize>,
        keep_samples: bool,
    ) -> PyResult<PyPointEstimateResult> {
        let mut m = OptimizeMethod::from_str(method).py()?;
        if let (OptimizeMethod::RandomSearch { .. }, Some(n)) = (m, n_samples) {
            m = OptimizeMethod::RandomSearch { n_samples: n };
        }
        if n_restarts == 0 {
            return Err(PyValueError::new_err("n_restarts must be >= 1"));
        }
        // Python models are evaluated on this thread; restarts one after another.
        let parallel = self.calls.is_empty();
        let opts = OptimizeOptions {
            n_restarts,
            max_iters,
            tolerance,
            seed,
            keep_samples,
            parallel_restarts: parallel,
            ..Default::default()
        };
        let r = py.detach(|| self.est.optimize(m, &opts));
        if let Some(e) = self.calls.iter().find_map(|c| c.take_interrupt()) {
            return Err(e);
        }
        Ok(PyPointEstimateResult { inner: r.py()? })
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPointEstimator>()?;
    m.add_class::<PyPointEstimateResult>()?;
    Ok(())
}
