//! `ModelRunner.from_rscm` (features `python` + `rscm`): an RSCM model, as RSCM
//! serializes it, run in-process by [`crate::models::rscm::RscmRunner`] (the same
//! runner as `[model] name = "rscm"` in a run file: no Python in the loop).

use std::sync::Arc;

use indexmap::IndexMap;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::runner::{PyModelRunner, RunnerKind};
use super::IntoPyResult;
use crate::models::rscm::{ParameterPath, RscmRunner};

/// An RSCM model runner (native part of ``climcal.ModelRunner.from_rscm``).
///
/// ``text``: the model as TOML or JSON; ``parameters``: ``(climcal name, component
/// type, parameter, index or None)`` per parameter, in order; ``outputs``:
/// ``(climcal name, RSCM variable)``.
#[pyfunction]
pub(crate) fn rscm_runner(
    py: Python<'_>,
    text: String,
    parameters: Vec<(String, String, String, Option<usize>)>,
    outputs: Vec<(String, String)>,
) -> PyResult<PyModelRunner> {
    let mut map = IndexMap::new();
    for (name, component, parameter, index) in parameters {
        if map.contains_key(&name) {
            return Err(PyValueError::new_err(format!("ModelRunner.from_rscm: parameter '{name}' is mapped twice")));
        }
        map.insert(name, ParameterPath { component, parameter, index });
    }
    let r = py.detach(move || RscmRunner::new(&text, &map, &outputs)).py()?;
    Ok(PyModelRunner { kind: RunnerKind::Rust(Arc::new(r)), name: "rscm".into(), processes: None })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rscm_runner, m)?)
}
