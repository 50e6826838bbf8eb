//! `ModelRunner`: built-in Rust models, Python callables (one parameter vector per
//! call) and vectorised Python callables (a whole batch per call).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::target::vec_f64;
use super::IntoPyResult;
use crate::error::{Error, Result};
use crate::runner::{ModelOutput, ModelRunner};

/// Bookkeeping shared by everything that calls Python during a run: an interrupt
/// (Ctrl-C) raised inside Python code, deferred to the end of the step, and the
/// first exception a Python model raised (for error messages).
#[derive(Default)]
pub(crate) struct PyCalls {
    interrupt: Mutex<Option<PyErr>>,
    first_error: Mutex<Option<String>>,
    errors: AtomicU64,
}

impl PyCalls {
    /// Run `f` (Python code, GIL held). An exception that is not an `Exception`
    /// (KeyboardInterrupt, SystemExit) is stored and the call is made once more, so
    /// the step finishes exactly as it would have and the run stops after it; an
    /// ordinary exception is a model failure (−∞ for that walker), counted, and the
    /// first one is kept for messages.
    pub(crate) fn call<T>(&self, py: Python<'_>, mut f: impl FnMut(Python<'_>) -> PyResult<T>) -> std::result::Result<T, String> {
        for attempt in 0..2 {
            match f(py) {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_instance_of::<PyException>(py) => {
                    let mut slot = self.interrupt.lock().expect("not poisoned");
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                    if attempt == 1 {
                        return Err("interrupted twice during one evaluation".into());
                    }
                }
                Err(e) => {
                    let msg = describe(py, &e);
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    let mut first = self.first_error.lock().expect("not poisoned");
                    if first.is_none() {
                        *first = Some(msg.clone());
                    }
                    return Err(msg);
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// The deferred interrupt, if any (taken).
    pub(crate) fn take_interrupt(&self) -> Option<PyErr> {
        self.interrupt.lock().expect("not poisoned").take()
    }

    /// The first exception a Python callable raised, if any.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("not poisoned").clone()
    }

    /// Number of exceptions raised by Python callables.
    pub(crate) fn n_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// `"TypeError: message"`.
pub(crate) fn describe(py: Python<'_>, e: &PyErr) -> String {
    let name = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    format!("{name}: {}", e.value(py))
}

/// Series named `outputs` from the adapter's `(times or None, [values, ...])`.
fn output_from_py(out: &Bound<'_, PyAny>, times: &Option<Arc<Vec<f64>>>, outputs: &Arc<Vec<String>>) -> PyResult<ModelOutput> {
    let tup = out.cast::<PyTuple>()?;
    let t_obj = tup.get_item(0)?;
    let times = if t_obj.is_none() {
        times.clone().ok_or_else(|| PyValueError::new_err("the model returned no times and none were given"))?
    } else {
        Arc::new(vec_f64(&t_obj, "model times")?)
    };
    let vals = tup.get_item(1)?;
    let vals = vals.cast::<PyList>()?;
    let mut series = Vec::with_capacity(outputs.len());
    for (name, v) in outputs.iter().zip(vals.iter()) {
        series.push(vec_f64(&v, &format!("model output '{name}'"))?);
    }
    ModelOutput::from_shared(times, outputs.clone(), series).map_err(super::to_py_err)
}

/// A Python callable called with one parameter vector at a time.
pub(crate) struct PyCallableRunner {
    /// `adapter(theta: tuple) -> (times | None, [values per output])`.
    adapter: Py<PyAny>,
    names: Vec<String>,
    outputs: Arc<Vec<String>>,
    times: Option<Arc<Vec<f64>>>,
    pub(crate) calls: Arc<PyCalls>,
}

impl ModelRunner for PyCallableRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn output_names(&self) -> Vec<String> {
        (*self.outputs).clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        Python::attach(|py| {
            self.calls.call(py, |py| {
                let theta = PyTuple::new(py, params)?;
                let out = self.adapter.bind(py).call1((theta,))?;
                output_from_py(&out, &self.times, &self.outputs)
            })
        })
        .map_err(Error::Model)
    }
    fn run_batch(&self, batch: &[Vec<f64>]) -> Vec<Result<ModelOutput>> {
        batch.iter().map(|p| self.run(p)).collect()
    }
}

/// A vectorised Python callable: a whole batch `(n, n_params)` per call.
pub(crate) struct PyBatchRunner {
    /// `adapter(theta: ndarray (n, n_params)) -> (times | None, [ndarray (n, n_times) per output])`.
    adapter: Py<PyAny>,
    names: Vec<String>,
    outputs: Arc<Vec<String>>,
    times: Option<Arc<Vec<f64>>>,
    pub(crate) calls: Arc<PyCalls>,
}

impl PyBatchRunner {
    /// Run a batch (rows in `param_names` order) with one Python call.
    pub(crate) fn run_rows(&self, rows: &[f64], n: usize) -> Vec<Result<ModelOutput>> {
        if n == 0 {
            return Vec::new();
        }
        let dim = self.names.len();
        let r = Python::attach(|py| {
            self.calls.call(py, |py| {
                let arr = PyArray1::from_slice(py, rows).reshape([n, dim])?;
                let out = self.adapter.bind(py).call1((arr,))?;
                let tup = out.cast::<PyTuple>()?;
                let t_obj = tup.get_item(0)?;
                let times = if t_obj.is_none() {
                    self.times.clone().ok_or_else(|| PyValueError::new_err("the model returned no times and none were given"))?
                } else {
                    Arc::new(vec_f64(&t_obj, "model times")?)
                };
                let nt = times.len();
                let vals = tup.get_item(1)?;
                let vals = vals.cast::<PyList>()?;
                let np = py.import("numpy")?;
                let mut per_var: Vec<Vec<f64>> = Vec::with_capacity(self.outputs.len());
                for (name, v) in self.outputs.iter().zip(vals.iter()) {
                    let a = np.call_method1("ascontiguousarray", (v, "float64"))?;
                    let a: PyReadonlyArray2<f64> = a.extract().map_err(|_| {
                        PyValueError::new_err(format!("vectorised model output '{name}' must be a 2-D array (n, n_times)"))
                    })?;
                    if a.shape() != [n, nt] {
                        return Err(PyValueError::new_err(format!(
                            "vectorised model output '{name}' has shape {:?}, expected ({n}, {nt})",
                            a.shape()
                        )));
                    }
                    per_var.push(a.as_slice()?.to_vec());
                }
                Ok((times, per_var))
            })
        });
        match r {
            Err(msg) => (0..n).map(|_| Err(Error::Model(msg.clone()))).collect(),
            Ok((times, per_var)) => {
                let nt = times.len();
                (0..n)
                    .map(|i| {
                        let series = per_var.iter().map(|v| v[i * nt..(i + 1) * nt].to_vec()).collect();
                        ModelOutput::from_shared(times.clone(), self.outputs.clone(), series)
                    })
                    .collect()
            }
        }
    }
}

impl ModelRunner for PyBatchRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn output_names(&self) -> Vec<String> {
        (*self.outputs).clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        self.run_rows(params, 1).pop().expect("one row")
    }
    fn run_batch(&self, batch: &[Vec<f64>]) -> Vec<Result<ModelOutput>> {
        let rows: Vec<f64> = batch.iter().flatten().copied().collect();
        self.run_rows(&rows, batch.len())
    }
}

/// Outputs computed ahead by a batch call, handed to the posterior one by one:
/// the vectorised path evaluates through the same [`crate::posterior::Posterior`]
/// code as the per-point path, so both give the same chain bit for bit.
pub(crate) struct PrecomputedRunner {
    pub(crate) names: Vec<String>,
    pub(crate) outputs: Vec<String>,
    pub(crate) cache: Mutex<HashMap<Vec<u64>, Result<ModelOutput>>>,
}

fn key(p: &[f64]) -> Vec<u64> {
    p.iter().map(|v| v.to_bits()).collect()
}

impl PrecomputedRunner {
    pub(crate) fn fill(&self, points: &[Vec<f64>], outs: Vec<Result<ModelOutput>>) {
        let mut c = self.cache.lock().expect("not poisoned");
        c.clear();
        for (p, o) in points.iter().zip(outs) {
            c.insert(key(p), o);
        }
    }
}

impl ModelRunner for PrecomputedRunner {
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn output_names(&self) -> Vec<String> {
        self.outputs.clone()
    }
    fn run(&self, params: &[f64]) -> Result<ModelOutput> {
        match self.cache.lock().expect("not poisoned").remove(&key(params)) {
            Some(r) => r,
            None => Err(Error::Model("internal: no precomputed output for this point".into())),
        }
    }
}

/// `(times, {name: values})` of one model run.
type RunResult<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyDict>);

/// Which kind of model a `ModelRunner` holds.
#[derive(Clone)]
pub(crate) enum RunnerKind {
    /// A model in Rust (no Python in the loop).
    Rust(Arc<dyn ModelRunner>),
    /// A Python callable, one vector per call.
    Callable(Arc<PyCallableRunner>),
    /// A vectorised Python callable.
    Batch(Arc<PyBatchRunner>),
}

impl RunnerKind {
    pub(crate) fn as_runner(&self) -> Arc<dyn ModelRunner> {
        match self {
            RunnerKind::Rust(r) => r.clone(),
            RunnerKind::Callable(r) => r.clone(),
            RunnerKind::Batch(r) => r.clone(),
        }
    }
}

/// A model: a built-in Rust model, or a Python callable (native part; use
/// ``climcal.ModelRunner``).
#[pyclass(name = "ModelRunner", module = "climcal._lib", frozen)]
pub struct PyModelRunner {
    pub(crate) kind: RunnerKind,
    pub(crate) name: String,
    /// Worker processes of a Python model run out of process (`processes=N`):
    /// the sampler evaluates that many at once.
    pub(crate) processes: Option<usize>,
}

#[pymethods]
impl PyModelRunner {
    /// A built-in Rust model by name with options (a dict).
    #[staticmethod]
    #[pyo3(signature = (name, options=None))]
    fn builtin(py: Python<'_>, name: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let json = match options {
            Some(o) => {
                // numpy arrays → lists so that json can encode them.
                let clean = PyDict::new(py);
                for (k, v) in o.iter() {
                    let v = if v.hasattr("tolist")? { v.call_method0("tolist")? } else { v };
                    clean.set_item(k, v)?;
                }
                let text: String = py.import("json")?.call_method1("dumps", (clean,))?.extract()?;
                serde_json::from_str(&text).map_err(|e| PyValueError::new_err(e.to_string()))?
            }
            None => serde_json::Value::Object(Default::default()),
        };
        let r = super::builtin::build(name, json).py()?;
        Ok(Self { kind: RunnerKind::Rust(r), name: name.to_string(), processes: None })
    }

    /// Names of the built-in models.
    #[staticmethod]
    fn builtin_names() -> Vec<&'static str> {
        super::builtin::names()
    }

    /// A Python model. ``adapter(theta)`` returns ``(times or None, [values per output])``;
    /// with ``vectorized`` it gets a 2-D array and returns 2-D values.
    #[staticmethod]
    #[pyo3(signature = (adapter, parameters, outputs, times=None, vectorized=false))]
    fn from_callable(
        adapter: Py<PyAny>,
        parameters: Vec<String>,
        outputs: Vec<String>,
        times: Option<&Bound<'_, PyAny>>,
        vectorized: bool,
    ) -> PyResult<Self> {
        if parameters.is_empty() {
            return Err(PyValueError::new_err("ModelRunner: the model needs at least one parameter name"));
        }
        if outputs.is_empty() {
            return Err(PyValueError::new_err("ModelRunner: output_variables must name at least one series the model returns"));
        }
        let times = times.map(|t| vec_f64(t, "ModelRunner times")).transpose()?.map(Arc::new);
        let outputs = Arc::new(outputs);
        let calls = Arc::new(PyCalls::default());
        let kind = if vectorized {
            RunnerKind::Batch(Arc::new(PyBatchRunner { adapter, names: parameters, outputs, times, calls }))
        } else {
            RunnerKind::Callable(Arc::new(PyCallableRunner { adapter, names: parameters, outputs, times, calls }))
        };
        Ok(Self { kind, name: "python".into(), processes: None })
    }

    /// A Python function evaluated in ``processes`` worker interpreters (each
    /// imports ``module`` or ``file`` once), as ``[model] name = "python"`` in a run
    /// file: same protocol, same results bit for bit.
    #[staticmethod]
    #[pyo3(signature = (python, module, file, function, parameters, outputs, times=None, vectorized=false, processes=1, timeout=None, sys_path=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn from_worker_processes(
        py: Python<'_>,
        python: String,
        module: Option<String>,
        file: Option<std::path::PathBuf>,
        function: String,
        parameters: Vec<String>,
        outputs: Vec<String>,
        times: Option<&Bound<'_, PyAny>>,
        vectorized: bool,
        processes: usize,
        timeout: Option<f64>,
        sys_path: Vec<String>,
    ) -> PyResult<Self> {
        if processes == 0 {
            return Err(PyValueError::new_err("ModelRunner: processes must be >= 1"));
        }
        let timeout = match timeout {
            Some(t) if !(t > 0.0 && t.is_finite()) => {
                return Err(PyValueError::new_err(format!("ModelRunner: timeout must be > 0 seconds, got {t}")))
            }
            t => t.map(std::time::Duration::from_secs_f64),
        };
        let times = times.map(|t| vec_f64(t, "ModelRunner times")).transpose()?;
        let spec = crate::models::python::PythonModelSpec {
            python,
            module,
            file,
            function,
            parameters,
            outputs,
            times,
            vectorized,
            sys_path,
            timeout,
        };
        let m = py.detach(move || crate::models::python::PythonModel::start(spec, processes)).py()?;
        Ok(Self { kind: RunnerKind::Rust(Arc::new(m)), name: "python".into(), processes: Some(processes) })
    }

    /// Parameter names the model takes, in order.
    #[getter]
    fn parameters(&self) -> Vec<String> {
        self.kind.as_runner().param_names()
    }

    /// Names of the series the model returns.
    #[getter]
    fn outputs(&self) -> Vec<String> {
        self.kind.as_runner().output_names()
    }

    /// Model name (``"python"`` for Python callables).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// True for Python models.
    #[getter]
    fn is_python(&self) -> bool {
        !matches!(self.kind, RunnerKind::Rust(_)) || self.processes.is_some()
    }

    /// Run once at ``theta`` (in ``parameters`` order): ``(times, {name: values})``.
    fn run<'py>(&self, py: Python<'py>, theta: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyDict>)> {
        let theta = vec_f64(theta, "ModelRunner.run(theta)")?;
        let r = self.kind.as_runner();
        if theta.len() != r.param_names().len() {
            return Err(PyValueError::new_err(format!(
                "ModelRunner.run: expected {} values ({:?}), got {}",
                r.param_names().len(),
                r.param_names(),
                theta.len()
            )));
        }
        let out = match &self.kind {
            RunnerKind::Rust(m) => {
                let m = m.clone();
                py.detach(move || crate::runner::run_catching(&*m, &theta))
            }
            _ => r.run(&theta),
        }
        .py()?;
        let d = PyDict::new(py);
        for (n, v) in out.names().iter().zip(out.values()) {
            d.set_item(n, PyArray1::from_slice(py, v))?;
        }
        Ok((PyArray1::from_slice(py, out.times()), d))
    }

    /// Run a batch ``(n, n_params)``: a list of ``(times, {name: values})`` (``None`` where the model failed).
    fn run_batch<'py>(&self, py: Python<'py>, thetas: PyReadonlyArray2<'py, f64>) -> PyResult<Vec<Option<RunResult<'py>>>> {
        let a = thetas.as_array();
        let batch: Vec<Vec<f64>> = a.rows().into_iter().map(|r| r.to_vec()).collect();
        let r = self.kind.as_runner();
        let outs = match &self.kind {
            RunnerKind::Rust(m) => {
                let m = m.clone();
                py.detach(move || m.run_batch(&batch))
            }
            _ => r.run_batch(&batch),
        };
        outs.into_iter()
            .map(|o| match o {
                Ok(out) => {
                    let d = PyDict::new(py);
                    for (n, v) in out.names().iter().zip(out.values()) {
                        d.set_item(n, PyArray1::from_slice(py, v))?;
                    }
                    Ok(Some((PyArray1::from_slice(py, out.times()), d)))
                }
                Err(_) => Ok(None),
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("ModelRunner({}; parameters {:?}; outputs {:?})", self.name, self.parameters(), self.outputs())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModelRunner>()
}
