//! `EnsembleSampler` and `SamplerState`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods, ToPyArray};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::RngCore;

use super::chain::PyChain;
use super::parameter::PyParameterSet;
use super::runner::{PrecomputedRunner, PyCalls, PyModelRunner, RunnerKind};
use super::target::{vec_f64, PyTarget};
use super::IntoPyResult;
use crate::density::LogDensity;
use crate::executor::{eval_block, EvalStats, Executor, ExecutorInfo, RayonExecutor, SerialExecutor};
use crate::parameter::{ParameterSet, Transform};
use crate::posterior::Posterior;
use crate::sampler::ensemble::PriorSampler;
use crate::sampler::CheckpointSink;
use crate::sampler::{EnsembleSampler, InitMethod, RunOptions, SamplerState};
use crate::storage::ChainMeta;
#[cfg(feature = "hdf5")]
use crate::storage::HdfSink;

/// A log-density chosen at run time: a calibration posterior (with a prior to draw
/// from) or a plain log-probability function.
pub(crate) struct DynDensity {
    inner: Arc<dyn LogDensity>,
    posterior: Option<Arc<Posterior>>,
}

impl LogDensity for DynDensity {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        self.inner.ln_prob(x)
    }
    fn n_blobs(&self) -> usize {
        self.inner.n_blobs()
    }
    fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        self.inner.ln_prob_with_blob(x, blob)
    }
    fn to_physical(&self, x: &[f64], out: &mut [f64]) {
        self.inner.to_physical(x, out)
    }
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.inner.to_sampler(x, out)
    }
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }
}

impl PriorSampler for DynDensity {
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        self.posterior.as_ref().expect("checked before initialize(prior)").sample_prior(rng, out)
    }
}

/// emcee's `log_prob_fn`: a Python function of one 1-D array.
struct PyLogProb {
    f: Py<PyAny>,
    dim: usize,
    names: Vec<String>,
    calls: Arc<PyCalls>,
}

impl LogDensity for PyLogProb {
    fn dim(&self) -> usize {
        self.dim
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        Python::attach(|py| {
            self.calls.call(py, |py| {
                let arr = PyArray1::from_slice(py, x);
                self.f.bind(py).call1((arr,))?.extract::<f64>()
            })
        })
        .unwrap_or(f64::NAN)
    }
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
}

/// A vectorised `log_prob_fn` (emcee's `vectorize=True`): the whole half-ensemble
/// goes to Python in one call per half-step.
struct PyVectorExecutor {
    f: Py<PyAny>,
    calls: Arc<PyCalls>,
}

impl Executor for PyVectorExecutor {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], _blobs: &mut [f64]) -> EvalStats {
        let t0 = Instant::now();
        let (n, dim) = (ln_probs.len(), density.dim());
        let r = Python::attach(|py| {
            self.calls.call(py, |py| {
                let arr = PyArray1::from_slice(py, points).reshape([n, dim])?;
                let out = self.f.bind(py).call1((arr,))?;
                let np = py.import("numpy")?;
                let out = np.call_method1("ascontiguousarray", (out, "float64"))?.call_method1("reshape", (-1,))?;
                let out = out.cast_into::<PyArray1<f64>>()?;
                if out.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "the vectorised log_prob_fn returned {} values for {n} points",
                        out.len()
                    )));
                }
                out.readonly().as_slice().map(|s| ln_probs.copy_from_slice(s)).map_err(PyErr::from)
            })
        });
        let mut failures = 0;
        match r {
            Ok(()) => {
                for v in ln_probs.iter_mut() {
                    if v.is_nan() || *v == f64::INFINITY {
                        *v = f64::NEG_INFINITY;
                        failures += 1;
                    }
                }
            }
            Err(_) => {
                ln_probs.fill(f64::NEG_INFINITY);
                failures = n as u64;
            }
        }
        EvalStats { failures, eval_seconds: t0.elapsed().as_secs_f64(), ..Default::default() }
    }
    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: 1, threads_per_rank: 1 }
    }
}

/// A vectorised Python model: the points of a half-step with a finite prior go to
/// Python in one call; the posterior then reads the precomputed outputs.
struct PyBatchModelExecutor {
    batch: Arc<super::runner::PyBatchRunner>,
    cache: Arc<PrecomputedRunner>,
    params: ParameterSet,
    /// `model_params[i] = theta[perm[i]]`.
    perm: Vec<usize>,
}

impl Executor for PyBatchModelExecutor {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> EvalStats {
        let t0 = Instant::now();
        let (n, dim) = (ln_probs.len(), density.dim());
        let mut theta = vec![0.0; dim];
        let mut todo: Vec<Vec<f64>> = Vec::with_capacity(n);
        for i in 0..n {
            let u = &points[i * dim..(i + 1) * dim];
            if self.params.ln_prior_sampler(u) == f64::NEG_INFINITY {
                continue;
            }
            self.params.to_physical(u, &mut theta);
            todo.push(self.perm.iter().map(|&j| theta[j]).collect());
        }
        let rows: Vec<f64> = todo.iter().flatten().copied().collect();
        let outs = self.batch.run_rows(&rows, todo.len());
        self.cache.fill(&todo, outs);
        let failures = eval_block(density, points, ln_probs, blobs);
        self.cache.cache.lock().expect("not poisoned").clear();
        EvalStats { failures, eval_seconds: t0.elapsed().as_secs_f64(), ..Default::default() }
    }
    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: 1, threads_per_rank: 1 }
    }
}

/// The committed state and metadata of a chain file.
#[cfg(feature = "hdf5")]
fn read_resume_point(path: &Path) -> crate::Result<crate::storage::ResumePoint> {
    crate::storage::read_resume(path)
}

/// Without HDF5 there is nothing to resume from.
#[cfg(not(feature = "hdf5"))]
fn read_resume_point(path: &Path) -> crate::Result<NoResume> {
    Err(crate::Error::Unsupported(format!(
        "cannot read {}: this build of climcal has no HDF5 support (feature `hdf5`)",
        path.display()
    )))
}

#[cfg(not(feature = "hdf5"))]
struct NoResume {
    state: SamplerState,
    meta: ChainMeta,
}

/// A posterior built from Python objects, the executor that suits its model, and
/// the call counters of its Python models (read back after the run).
pub(crate) type BuiltPosterior = (Posterior, Arc<dyn Executor>, Vec<Arc<PyCalls>>);

/// The calibration posterior of the Python objects and the executor that suits
/// its model: rayon for Rust models, serial for Python callables, one batch call
/// per half-step for vectorised Python models.
pub(crate) fn build_posterior(
    parameters: &PyParameterSet,
    target: &PyTarget,
    runner: &PyModelRunner,
    likelihood: Option<&Bound<'_, PyAny>>,
    threads: Option<usize>,
) -> PyResult<(BuiltPosterior, String)> {
    let (lik, lik_name) = super::likelihood::likelihood_of(likelihood, target)?;
    let params = parameters.inner.clone();
    let mut calls = Vec::new();
    let (model, executor): (Arc<dyn crate::runner::ModelRunner>, Arc<dyn Executor>) = match &runner.kind {
        RunnerKind::Rust(m) => {
            // A Python model in worker processes runs as many evaluations at once
            // as it has workers; threads= is not a separate setting for it.
            let threads = match (runner.processes, threads) {
                (Some(p), None) => Some(p),
                (Some(p), Some(t)) if t != p => {
                    return Err(PyValueError::new_err(format!(
                        "threads={t} does not apply to a Python model in worker processes: it evaluates processes={p} points at once; drop threads= or set ModelRunner(..., processes={t})"
                    )))
                }
                (_, t) => t,
            };
            let ex: Arc<dyn Executor> = match threads {
                Some(1) => Arc::new(SerialExecutor),
                Some(t) => Arc::new(RayonExecutor::with_threads(t).py()?),
                None => Arc::new(RayonExecutor::global()),
            };
            (m.clone(), ex)
        }
        RunnerKind::Callable(_) | RunnerKind::Batch(_) if threads.is_some_and(|t| t > 1) => {
            return Err(PyValueError::new_err(format!(
                "threads={} cannot speed up an in-process Python model: the GIL runs one call at a time. Use ModelRunner(model_factory=f, ..., processes={}) to evaluate it in that many worker processes (f must be a module-level function), or drop threads=",
                threads.unwrap_or(1),
                threads.unwrap_or(1)
            )))
        }
        RunnerKind::Callable(c) => {
            calls.push(c.calls.clone());
            (c.clone(), Arc::new(SerialExecutor))
        }
        RunnerKind::Batch(b) => {
            calls.push(b.calls.clone());
            let cache = Arc::new(PrecomputedRunner {
                names: crate::runner::ModelRunner::param_names(&**b),
                outputs: crate::runner::ModelRunner::output_names(&**b),
                cache: Default::default(),
            });
            let perm =
                crate::runner::ModelRunner::param_names(&**b).iter().map(|n| params.index_of(n)).collect::<Option<Vec<usize>>>();
            let ex: Arc<dyn Executor> = match perm {
                Some(perm) => {
                    Arc::new(PyBatchModelExecutor { batch: b.clone(), cache: cache.clone(), params: params.clone(), perm })
                }
                // Posterior::new below reports the missing parameter.
                None => Arc::new(SerialExecutor),
            };
            (cache, ex)
        }
    };
    let post = Posterior::new(params, target.inner.clone(), model, lik).py()?;
    // Observation times the model does not cover are named now, not as walkers at -inf later.
    crate::alignment::probe_alignment(&post).py()?;
    Ok(((post, executor, calls), lik_name))
}

/// Where a run is: walker positions, log-probabilities, random streams, counters.
/// Pass it to ``EnsembleSampler.run`` to continue.
#[pyclass(name = "SamplerState", module = "climcal._lib")]
pub struct PySamplerState {
    pub(crate) inner: SamplerState,
    density: Arc<DynDensity>,
}

#[pymethods]
impl PySamplerState {
    /// Steps taken so far.
    #[getter]
    fn iteration(&self) -> u64 {
        self.inner.iteration
    }
    /// Number of walkers.
    #[getter]
    fn n_walkers(&self) -> usize {
        self.inner.n_walkers
    }
    /// Number of parameters.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.dim
    }
    /// Walker positions (physical values), ``(n_walkers, ndim)``.
    #[getter]
    fn coords<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (nw, d) = (self.inner.n_walkers, self.inner.dim);
        let mut out = vec![0.0; nw * d];
        for k in 0..nw {
            self.density.to_physical(self.inner.walker(k), &mut out[k * d..(k + 1) * d]);
        }
        PyArray1::from_vec(py, out).reshape([nw, d])
    }
    /// Log-probability of each walker.
    #[getter]
    fn log_prob<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.inner.ln_probs)
    }
    /// Accepted proposals per walker so far.
    #[getter]
    fn accepted<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        PyArray1::from_slice(py, &self.inner.accepted)
    }
    /// Failed evaluations so far.
    #[getter]
    fn failures(&self) -> u64 {
        self.inner.failures
    }
    /// Become a copy of ``other`` (``sampler.resume`` moves the state object the
    /// user holds to where the file ends, so that it is not stale).
    fn _assign(&mut self, other: PyRef<'_, PySamplerState>) {
        self.inner = other.inner.clone();
    }
    fn __repr__(&self) -> String {
        format!("SamplerState(iteration={}, n_walkers={}, ndim={})", self.inner.iteration, self.inner.n_walkers, self.inner.dim)
    }
}

/// The affine-invariant ensemble sampler (native part; use ``climcal.EnsembleSampler``).
#[pyclass(name = "EnsembleSampler", module = "climcal._lib")]
pub struct PyEnsembleSampler {
    sampler: EnsembleSampler<Arc<DynDensity>>,
    density: Arc<DynDensity>,
    calls: Vec<Arc<PyCalls>>,
    blob_layout: Vec<(String, Vec<f64>)>,
    /// Derived quantities the model declares, stored as the last blob columns.
    derived: Vec<crate::derived::DerivedQuantity>,
    model_name: String,
    /// What a resume must match (model, likelihood, target), as in the chain file.
    fingerprint: String,
}

fn n_walkers_checked<D: LogDensity>(s: EnsembleSampler<D>, n: Option<usize>) -> PyResult<EnsembleSampler<D>> {
    match n {
        Some(n) => s.with_n_walkers(n).py(),
        None => Ok(s),
    }
}

impl PyEnsembleSampler {
    /// What the chain file records about this sampler.
    fn chain_meta(&self, thin: usize, n_steps_target: u64) -> ChainMeta {
        let mut meta = ChainMeta::for_density(&*self.density, self.sampler.seed(), thin);
        if let Some(post) = &self.density.posterior {
            let p = post.params();
            meta.units = p.defs().map(|d| d.unit.clone()).collect();
            meta.priors =
                p.defs().map(|d| d.prior.spec().and_then(|s| serde_json::to_string(&s).ok()).unwrap_or_default()).collect();
            meta.transforms = p
                .defs()
                .map(|d| match d.transform {
                    Transform::Identity => "identity".to_string(),
                    Transform::Log => "log".to_string(),
                    Transform::Logit => "logit".to_string(),
                })
                .collect();
        }
        meta.blob_names = self.blob_layout.iter().flat_map(|(n, ts)| ts.iter().map(move |t| format!("{n}@{t}"))).collect();
        meta.derived_names = self.derived.iter().map(|q| q.name.clone()).collect();
        meta.derived_units = self.derived.iter().map(|q| q.unit.clone()).collect();
        meta.derived_descriptions = self.derived.iter().map(|q| q.description.clone()).collect();
        meta.model = self.model_name.clone();
        meta.fingerprint = self.fingerprint.clone();
        meta.n_steps_target = n_steps_target;
        meta.threads = self.sampler.executor_info().threads_per_rank;
        meta
    }

    #[cfg(not(feature = "hdf5"))]
    fn open_sink(&self, path: &Path, _: &ChainMeta, _: &SamplerState, _: usize) -> crate::Result<Box<dyn CheckpointSink>> {
        Err(crate::Error::Unsupported(format!(
            "cannot write {}: this build of climcal has no HDF5 support (feature `hdf5`)",
            path.display()
        )))
    }

    /// A new chain file, or the existing one when it ends where `state` is.
    #[cfg(feature = "hdf5")]
    fn open_sink(
        &self,
        path: &Path,
        meta: &ChainMeta,
        state: &SamplerState,
        thin: usize,
    ) -> crate::Result<Box<dyn CheckpointSink>> {
        let n_blobs = self.density.n_blobs();
        if !path.exists() {
            return Ok(Box::new(HdfSink::create(path, meta, state, n_blobs, false)?));
        }
        let (sink, point) = HdfSink::open_resume(path)?;
        let st = &point.state;
        let bad = |reason: String| crate::Error::ChainFile { path: path.to_path_buf(), reason };
        if let Some(d) = super::fingerprint::mismatch(&point.meta.fingerprint, &meta.fingerprint) {
            return Err(bad(format!("holds a run of another posterior ({d}); write to another checkpoint_path")));
        }
        if st.iteration == state.iteration && point.meta.thin != thin {
            return Err(bad(format!("was written with thin={}; continue it with thin={}", point.meta.thin, point.meta.thin)));
        }
        if st.n_walkers == state.n_walkers
            && st.dim == state.dim
            && st.iteration == state.iteration
            && point.meta.thin == thin
            && sink.n_blobs() == n_blobs
            && point.meta.names == meta.names
        {
            return Ok(Box::new(sink));
        }
        Err(crate::Error::ChainFile {
            path: path.to_path_buf(),
            reason: format!(
                "exists and holds another run (iteration {}, {} walkers × {:?}; this run is at iteration {} with {} walkers × {:?}); \
                 remove it, choose another checkpoint_path, or continue it with sampler.resume(path) \
                 (after a resume, sampler.state is where the file ends)",
                st.iteration, st.n_walkers, point.meta.names, state.iteration, state.n_walkers, meta.names
            ),
        })
    }

    fn first_error(&self) -> Option<String> {
        self.calls.iter().find_map(|c| c.first_error())
    }
    fn take_interrupt(&self) -> Option<PyErr> {
        self.calls.iter().find_map(|c| c.take_interrupt())
    }
    fn with_model_error(&self, e: PyErr, py: Python<'_>) -> PyErr {
        match self.first_error() {
            Some(m) => PyValueError::new_err(format!("{}; the first error the Python function raised was: {m}", e.value(py))),
            None => e,
        }
    }
}

use crate::sampler::moves as climcal_moves;

#[pymethods]
impl PyEnsembleSampler {
    /// Sampler for the calibration posterior ``prior × model × likelihood``.
    #[new]
    #[pyo3(signature = (parameters, target, runner, likelihood=None, n_walkers=None, seed=0, threads=None, blobs=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        parameters: PyRef<'_, PyParameterSet>,
        target: PyRef<'_, PyTarget>,
        runner: PyRef<'_, PyModelRunner>,
        likelihood: Option<Bound<'_, PyAny>>,
        n_walkers: Option<usize>,
        seed: u64,
        threads: Option<usize>,
        blobs: bool,
    ) -> PyResult<Self> {
        let ((post, executor, calls), lik_name) = build_posterior(&parameters, &target, &runner, likelihood.as_ref(), threads)?;
        // Derived quantities the model declares (ECS, TCR, …) are always kept.
        let post = post.with_blobs(blobs).with_derived(true);
        let blob_layout = if blobs { post.blob_layout() } else { Vec::new() };
        let derived = post.derived_quantities();
        let post = Arc::new(post);
        let density = Arc::new(DynDensity { inner: post.clone(), posterior: Some(post) });
        let sampler = n_walkers_checked(EnsembleSampler::new(density.clone(), seed), n_walkers)?.with_executor(executor);
        let fingerprint = super::fingerprint::of_run(&runner.name, &lik_name, &target.inner);
        Ok(Self { sampler, density, calls, blob_layout, derived, model_name: runner.name.clone(), fingerprint })
    }

    /// Sampler for a plain log-probability function of a 1-D array (emcee's
    /// ``log_prob_fn``); with ``vectorize`` the function takes ``(n, ndim)`` and
    /// returns ``n`` values.
    #[staticmethod]
    #[pyo3(signature = (log_prob_fn, ndim, n_walkers=None, seed=0, vectorize=false, names=None))]
    fn from_log_prob(
        log_prob_fn: Py<PyAny>,
        ndim: usize,
        n_walkers: Option<usize>,
        seed: u64,
        vectorize: bool,
        names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        if ndim == 0 {
            return Err(PyValueError::new_err("ndim must be >= 1"));
        }
        let names = names.unwrap_or_else(|| (0..ndim).map(|i| format!("p{i}")).collect());
        if names.len() != ndim {
            return Err(PyValueError::new_err(format!("names has {} entries but ndim = {ndim}", names.len())));
        }
        let calls = Arc::new(PyCalls::default());
        let (f_density, executor): (Py<PyAny>, Arc<dyn Executor>) = if vectorize {
            Python::attach(|py| {
                (
                    log_prob_fn.clone_ref(py),
                    Arc::new(PyVectorExecutor { f: log_prob_fn, calls: calls.clone() }) as Arc<dyn Executor>,
                )
            })
        } else {
            (log_prob_fn, Arc::new(SerialExecutor))
        };
        let inner = Arc::new(PyLogProb { f: f_density, dim: ndim, names, calls: calls.clone() });
        let density = Arc::new(DynDensity { inner, posterior: None });
        let sampler = n_walkers_checked(EnsembleSampler::new(density.clone(), seed), n_walkers)?.with_executor(executor);
        Ok(Self {
            sampler,
            density,
            calls: vec![calls],
            blob_layout: Vec::new(),
            derived: Vec::new(),
            model_name: "log_prob_fn".into(),
            fingerprint: String::new(),
        })
    }

    /// Propose with ``moves``: a JSON list of ``{kind, weight, …}`` tables (see
    /// ``climcal.moves``); ``None`` goes back to the stretch move.
    #[pyo3(signature = (moves=None))]
    fn set_moves(&mut self, moves: Option<&str>) -> PyResult<()> {
        let m = match moves {
            Some(text) => climcal_moves::Moves::from_json(text).py()?,
            None => climcal_moves::Moves::default(),
        };
        self.sampler.set_moves(m).py()
    }

    /// The moves as a JSON list of ``{kind, weight, …}`` tables.
    #[getter]
    fn moves(&self) -> String {
        self.sampler.moves().to_json()
    }

    /// Place the walkers: ``method`` is ``"prior"`` (independent prior draws),
    /// ``"ball"`` (Gaussian ball of ``radius`` around ``center``, in the sampler's
    /// space) or ``"positions"`` (``positions``: physical values, ``(n_walkers, ndim)``).
    /// Returns ``(state, walkers redrawn from the prior because their first draw failed)``.
    #[pyo3(signature = (method="prior", center=None, radius=1e-3, positions=None))]
    fn initialize(
        &self,
        py: Python<'_>,
        method: &str,
        center: Option<&Bound<'_, PyAny>>,
        radius: f64,
        positions: Option<PyReadonlyArray2<'_, f64>>,
    ) -> PyResult<(PySamplerState, usize)> {
        let m = match method {
            "prior" => {
                if self.density.posterior.is_none() {
                    return Err(PyValueError::new_err(
                        "initialize(method='prior') needs parameters with priors; with a log_prob_fn use method='ball' or positions",
                    ));
                }
                InitMethod::Prior
            }
            "ball" => {
                let c = center.ok_or_else(|| PyValueError::new_err("initialize(method='ball') needs center="))?;
                InitMethod::Ball { center: vec_f64(c, "initialize(center)")?, radius }
            }
            "positions" => {
                let p = positions.ok_or_else(|| PyValueError::new_err("initialize(method='positions') needs positions="))?;
                let (nw, d) = (self.sampler.n_walkers(), self.density.dim());
                if p.shape() != [nw, d] {
                    return Err(PyValueError::new_err(format!(
                        "initial positions have shape {:?}, expected (n_walkers, ndim) = ({nw}, {d})",
                        p.shape()
                    )));
                }
                InitMethod::Explicit(p.as_array().iter().copied().collect())
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown initialisation method '{other}'; use 'prior', 'ball' or an array of positions"
                )))
            }
        };
        let has_prior = self.density.posterior.is_some();
        let r = py.detach(|| {
            if has_prior {
                self.sampler.initialize_counted(m)
            } else {
                self.sampler.initialize_without_prior(m).map(|s| (s, 0))
            }
        });
        if let Some(e) = self.take_interrupt() {
            return Err(e);
        }
        let (inner, redrawn) = r.py().map_err(|e| self.with_model_error(e, py))?;
        Ok((PySamplerState { inner, density: self.density.clone() }, redrawn))
    }

    /// Run ``n_steps`` steps from ``state`` (updated in place). Returns
    /// ``(chain, exception or None)``: the exception (KeyboardInterrupt from Ctrl-C,
    /// or one raised by ``progress``) stopped the run after a checkpoint.
    #[pyo3(signature = (state, n_steps, thin=1, checkpoint_every=100, checkpoint_path=None, progress=None, progress_interval=0.1))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        state: &Bound<'py, PySamplerState>,
        n_steps: u64,
        thin: usize,
        checkpoint_every: usize,
        checkpoint_path: Option<PathBuf>,
        progress: Option<Py<PyAny>>,
        progress_interval: f64,
    ) -> PyResult<(PyChain, Option<Py<PyAny>>)> {
        if thin == 0 {
            return Err(PyValueError::new_err("thin must be >= 1"));
        }
        let opts = RunOptions { thin, checkpoint_every, checkpoint_path: None, stop: None, store_blobs: true };
        let mut st = state.borrow_mut();
        let st: &mut SamplerState = &mut st.inner;
        let interval = Duration::from_secs_f64(progress_interval.max(0.0));
        let mut pending: Option<PyErr> = None;
        let mut last = Instant::now();
        let calls = &self.calls;
        let meta = checkpoint_path.as_ref().map(|_| self.chain_meta(thin, st.iteration + n_steps));
        let res = py.detach(|| {
            let progress_fn = |info: &crate::sampler::ProgressInfo| {
                if let Some(e) = calls.iter().find_map(|c| c.take_interrupt()) {
                    pending = Some(e);
                    return ControlFlow::Break(());
                }
                if info.step != info.n_steps && last.elapsed() < interval {
                    return ControlFlow::Continue(());
                }
                last = Instant::now();
                Python::attach(|py| {
                    if let Err(e) = py.check_signals() {
                        pending = Some(e);
                        return ControlFlow::Break(());
                    }
                    if let Some(cb) = &progress {
                        let args =
                            (info.step, info.n_steps, info.acceptance, info.mean_ln_prob, info.evals_per_second, info.failures);
                        if let Err(e) = cb.bind(py).call1(args) {
                            pending = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                })
            };
            match (&checkpoint_path, meta) {
                (Some(path), Some(meta)) => {
                    let mut sink = self.open_sink(path, &meta, st, thin)?;
                    self.sampler.run_with_sink(st, n_steps, &opts, Some(&mut *sink), progress_fn).map(|(c, _)| c)
                }
                _ => self.sampler.run_with_sink(st, n_steps, &opts, None, progress_fn).map(|(c, _)| c),
            }
        });
        let chain = res.py()?;
        let chain = PyChain::new(chain, self.blob_layout.clone()).with_derived(self.derived.clone());
        Ok((chain, pending.map(|e| e.into_value(py).into_any())))
    }

    /// The committed state of the chain file ``path``, checked against this
    /// sampler (walkers, parameter names and priors, blobs).
    fn resume_state(&self, py: Python<'_>, path: PathBuf) -> PyResult<PySamplerState> {
        let point = py.detach(|| read_resume_point(&path)).py()?;
        let bad = |reason: String| super::to_py_err(crate::Error::ChainFile { path: path.clone(), reason });
        let mine = self.chain_meta(point.meta.thin, 0);
        if point.state.n_walkers != self.sampler.n_walkers() {
            return Err(bad(format!(
                "holds {} walkers but this sampler has {}; create the sampler with n_walkers={}",
                point.state.n_walkers,
                self.sampler.n_walkers(),
                point.state.n_walkers
            )));
        }
        if point.meta.names != mine.names {
            return Err(bad(format!("holds parameters {:?} but this sampler has {:?}", point.meta.names, mine.names)));
        }
        if let Some(d) = super::fingerprint::mismatch(&point.meta.fingerprint, &self.fingerprint) {
            return Err(bad(format!(
                "was run with another posterior ({d}); resume with the sampler that wrote it, or start a new run in another file"
            )));
        }
        let given = |v: &Vec<String>| v.iter().all(|p| !p.is_empty());
        if given(&point.meta.priors) && given(&mine.priors) && point.meta.priors != mine.priors {
            return Err(bad(format!(
                "was run with priors {:?} but this sampler has {:?}; resume with the same priors",
                point.meta.priors, mine.priors
            )));
        }
        Ok(PySamplerState { inner: point.state, density: self.density.clone() })
    }

    /// Number of walkers.
    #[getter]
    fn n_walkers(&self) -> usize {
        self.sampler.n_walkers()
    }
    /// Number of parameters.
    #[getter]
    fn ndim(&self) -> usize {
        self.density.dim()
    }
    /// The seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.sampler.seed()
    }
    /// Parameter names.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.density.param_names()
    }
    /// Blob layout: ``[(variable, observation times), ...]`` (empty without blobs).
    #[getter]
    fn blob_layout<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyArray1<f64>>)>> {
        Ok(self.blob_layout.iter().map(|(n, t)| (n.clone(), PyArray1::from_slice(py, t))).collect())
    }
    /// Exceptions raised by Python callables so far and the first one's text.
    #[getter]
    fn python_errors(&self) -> (u64, Option<String>) {
        (self.calls.iter().map(|c| c.n_errors()).sum(), self.first_error())
    }
    /// Log-probability at physical values ``theta`` (``(ndim,)`` or ``(n, ndim)``).
    fn log_prob<'py>(&self, py: Python<'py>, theta: PyReadonlyArray2<'py, f64>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let a = theta.as_array();
        let d = self.density.dim();
        if a.ncols() != d {
            return Err(PyValueError::new_err(format!("expected {d} columns, got {}", a.ncols())));
        }
        let mut u = vec![0.0; d];
        let out: Vec<f64> = a
            .rows()
            .into_iter()
            .map(|r| {
                self.density.to_sampler(&r.to_vec(), &mut u);
                self.density.ln_prob(&u)
            })
            .collect();
        Ok(out.to_pyarray(py))
    }
    fn __repr__(&self) -> String {
        format!(
            "EnsembleSampler(n_walkers={}, ndim={}, seed={})",
            self.sampler.n_walkers(),
            self.density.dim(),
            self.sampler.seed()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEnsembleSampler>()?;
    m.add_class::<PySamplerState>()?;
    Ok(())
}
