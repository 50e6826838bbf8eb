//! Projections from Python: the run file stored in a chain file rebuilds the model,
//! and draws run under scenario forcing on a rayon pool with the GIL released
//! (`climcal.Chain.project` wraps it).

use numpy::{PyArray1, PyArray3, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::IntoPyResult;
use crate::config::RunConfig;
use crate::executor::{Executor, RayonExecutor, SerialExecutor};
use crate::projection::scenario::{Join, ScenarioSource};
use crate::projection::Projector;

/// Project ``draws`` (``(n, n_params)``, physical values in the chain's parameter
/// order) of the model in run file ``config_toml`` (paths relative to
/// ``config_dir``) under ``scenarios`` (``ssp245`` or ``NAME=FILE.csv``).
///
/// Returns a dict: ``years``, ``outputs``, ``n_history``, ``scenarios`` (name →
/// ``{"label", "source", "values" (n, n_outputs, n_years), "failed" (n,),
/// "join_offset", "join_step", "join_step_unblended"}``).
#[pyfunction]
#[pyo3(signature = (config_toml, config_dir, draws, scenarios, end_year=2100.0, blend_years=Join::DEFAULT_BLEND_YEARS, threads=None))]
#[allow(clippy::too_many_arguments)]
fn project_draws<'py>(
    py: Python<'py>,
    config_toml: &str,
    config_dir: &str,
    draws: &Bound<'py, PyAny>,
    scenarios: Vec<String>,
    end_year: f64,
    blend_years: u32,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let np_mod = py.import("numpy")?;
    let a = np_mod.call_method1("ascontiguousarray", (draws, "float64"))?;
    let arr = a.cast::<numpy::PyArrayDyn<f64>>()?.readonly();
    if arr.ndim() != 2 {
        return Err(PyValueError::new_err(format!("draws: expected a 2-D array (n, n_params), got {}-D", arr.ndim())));
    }
    let (n, dim) = (arr.shape()[0], arr.shape()[1]);
    let data = arr.as_slice()?.to_vec();
    let cfg = RunConfig::from_toml_str(config_toml, config_dir).py()?;
    let problem = cfg.build_problem().py()?;
    if problem.names.len() != dim {
        return Err(PyValueError::new_err(format!(
            "draws have {dim} columns but the run file has {} parameters {:?}",
            problem.names.len(),
            problem.names
        )));
    }
    let post = problem.posterior.as_ref().ok_or_else(|| {
        PyValueError::new_err(format!(
            "model '{}' is a plain log-density with no outputs: nothing to project",
            problem.model_name
        ))
    })?;
    let mut loaded = Vec::new();
    for s in &scenarios {
        let sc = ScenarioSource::parse(s).and_then(|s| s.load()).py()?;
        if loaded.iter().any(|o: &crate::projection::scenario::Scenario| o.name == sc.name) {
            return Err(PyValueError::new_err(format!("scenario '{}' is given twice", sc.name)));
        }
        loaded.push(sc);
    }
    let projector = Projector::new(post.runner().clone(), loaded, Join { end_year, blend_years })
        .map_err(|e| crate::Error::Unsupported(format!("model '{}': {e}", problem.model_name)))
        .py()?;
    let model_draws: Vec<f64> = data.chunks_exact(dim.max(1)).take(n).flat_map(|t| post.model_params(t)).collect();
    let executor: Box<dyn Executor> = match threads {
        Some(0) => return Err(PyValueError::new_err("threads must be >= 1")),
        Some(1) => Box::new(SerialExecutor),
        Some(t) => Box::new(RayonExecutor::with_threads(t).py()?),
        None => Box::new(RayonExecutor::global()),
    };
    let results =
        py.detach(|| (0..projector.scenarios().len()).map(|i| projector.run(i, &model_draws, &*executor)).collect::<Vec<_>>());
    let out = PyDict::new(py);
    out.set_item("years", PyArray1::from_slice(py, projector.years()))?;
    out.set_item("outputs", projector.outputs().to_vec())?;
    out.set_item("n_history", projector.n_history())?;
    let per = PyDict::new(py);
    let (no, ny) = (projector.outputs().len(), projector.years().len());
    for ((sc, r), p) in projector.scenarios().iter().zip(projector.reports()).zip(results) {
        let d = PyDict::new(py);
        d.set_item("label", &sc.label)?;
        d.set_item("source", &sc.source)?;
        let v = PyArray1::from_vec(py, p.values).reshape([n, no, ny])?;
        let v: Bound<'py, PyArray3<f64>> = v;
        d.set_item("values", v)?;
        d.set_item("failed", PyArray1::from_vec(py, p.failed))?;
        d.set_item("join_offset", r.offset.to_vec())?;
        d.set_item("join_step", r.step)?;
        d.set_item("join_step_unblended", r.step_unblended)?;
        per.set_item(&sc.name, d)?;
    }
    out.set_item("scenarios", per)?;
    Ok(out)
}

/// Names of the built-in scenarios.
#[pyfunction]
fn builtin_scenarios() -> Vec<&'static str> {
    crate::projection::scenario::builtin_names()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(project_draws, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_scenarios, m)?)?;
    Ok(())
}
