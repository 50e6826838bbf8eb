//! `EmceeMove`: one proposal move of the core (`crate::sampler::moves`) driven a
//! step at a time from Python, for `climcal.emcee`.
//!
//! emcee's `EnsembleSampler` picks a move per step and calls its
//! `propose(model, state)`; `climcal.emcee`'s built-in moves do that here: the
//! split of the ensemble, the proposals, their Metropolis–Hastings factors, the
//! acceptance draws and the move's tuning state (DIME, Gaussian `sequential`)
//! are Rust; Python is called once per set of the split (once per step for a
//! Gaussian move) with the proposals, to return their log-probabilities.
//! `run` makes many steps in one call and fills the chain rows as well (what
//! `run_mcmc` uses for one built-in move without blobs).
//!
//! Random numbers: each call gets a 64-bit `seed` (drawn by the Python sampler
//! from its numpy `RandomState`, so `random_state` alone fixes what follows, as
//! in emcee) and draws for walker `k` from `walker_rng(seed, k)`, in the order
//! of the core's general step (`moves::step`).

use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::Rng;

use super::IntoPyResult;
use crate::sampler::moves::{split_labels, Ctx, Layout, MoveSpec, MoveTuning};
use crate::sampler::rng::walker_rngs;

/// One built-in move with its tuning state (native part of
/// ``climcal.emcee.moves``).
#[pyclass(name = "EmceeMove", module = "climcal._lib")]
pub struct PyEmceeMove {
    spec: MoveSpec,
    tuning: MoveTuning,
}

#[pymethods]
impl PyEmceeMove {
    /// From a move table as JSON (``{"kind": "stretch", "a": 2.0, ...}``).
    #[new]
    fn new(spec_json: &str) -> PyResult<Self> {
        let spec: MoveSpec =
            serde_json::from_str(spec_json).map_err(|e| PyValueError::new_err(format!("invalid move {spec_json}: {e}")))?;
        Ok(Self { spec, tuning: MoveTuning::None })
    }

    /// The move's tuning state as JSON (pickling).
    fn tuning_json(&self) -> String {
        serde_json::to_string(&self.tuning).expect("tuning serialises")
    }

    /// Restore [`tuning_json`].
    fn set_tuning_json(&mut self, text: &str) -> PyResult<()> {
        self.tuning = serde_json::from_str(text).map_err(|e| PyValueError::new_err(format!("invalid move tuning: {e}")))?;
        Ok(())
    }

    /// Forget the tuning state.
    fn reset_tuning(&mut self) {
        self.tuning = MoveTuning::None;
    }

    /// Check the move against an ensemble of `nwalkers × ndim`.
    fn validate(&self, nwalkers: usize, ndim: usize) -> PyResult<()> {
        self.spec.proposal().validate(nwalkers, ndim).py()
    }

    /// One step of the move: `evaluate(q, idx)` returns the log-probabilities
    /// (float64, one per row) of the proposals `q` for walkers `idx`. Returns
    /// the new positions and log-probabilities and the acceptance mask.
    #[allow(clippy::type_complexity)]
    fn propose<'py>(
        &mut self,
        py: Python<'py>,
        seed: u64,
        coords: PyReadonlyArray2<'py, f64>,
        log_prob: PyReadonlyArray1<'py, f64>,
        evaluate: Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<bool>>)> {
        let (nw, dim, mut positions, mut ln_probs) = take_state(&coords, &log_prob)?;
        self.spec.proposal().validate(nw, dim).py()?;
        let mut accepted = vec![false; nw];
        self.step(py, seed, nw, dim, &mut positions, &mut ln_probs, &evaluate, &mut accepted)?;
        let pos = PyArray1::from_vec(py, positions).reshape([nw, dim])?;
        Ok((pos, PyArray1::from_vec(py, ln_probs), PyArray1::from_vec(py, accepted)))
    }

    /// `seeds.len()` steps (one seed each), keeping every `thin_by`-th step:
    /// returns the kept positions `(n_kept, nwalkers, ndim)`, log-probabilities
    /// `(n_kept, nwalkers)` and acceptance masks `(n_kept, nwalkers)`, and the
    /// final positions and log-probabilities. The chain rows are filled here,
    /// so Python is called only for the log-probabilities.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        seeds: PyReadonlyArray1<'py, i64>,
        coords: PyReadonlyArray2<'py, f64>,
        log_prob: PyReadonlyArray1<'py, f64>,
        evaluate: Bound<'py, PyAny>,
        thin_by: usize,
    ) -> PyResult<(
        Bound<'py, PyArray3<f64>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray2<bool>>,
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let (nw, dim, mut positions, mut ln_probs) = take_state(&coords, &log_prob)?;
        self.spec.proposal().validate(nw, dim).py()?;
        let thin_by = thin_by.max(1);
        let seeds = seeds.as_slice()?;
        let n_kept = seeds.len() / thin_by;
        let mut chain = Vec::with_capacity(n_kept * nw * dim);
        let mut lps = Vec::with_capacity(n_kept * nw);
        let mut acc = Vec::with_capacity(n_kept * nw);
        let mut accepted = vec![false; nw];
        for (i, &seed) in seeds.iter().enumerate() {
            accepted.iter_mut().for_each(|a| *a = false);
            self.step(py, seed as u64, nw, dim, &mut positions, &mut ln_probs, &evaluate, &mut accepted)?;
            if (i + 1) % thin_by == 0 {
                chain.extend_from_slice(&positions);
                lps.extend_from_slice(&ln_probs);
                acc.extend_from_slice(&accepted);
            }
        }
        Ok((
            PyArray1::from_vec(py, chain).reshape([n_kept, nw, dim])?,
            PyArray1::from_vec(py, lps).reshape([n_kept, nw])?,
            PyArray1::from_vec(py, acc).reshape([n_kept, nw])?,
            PyArray1::from_vec(py, positions).reshape([nw, dim])?,
            PyArray1::from_vec(py, ln_probs),
        ))
    }

    /// The move's name as emcee spells its class.
    #[getter]
    fn name(&self) -> &'static str {
        self.spec.name()
    }
}

/// Positions and log-probabilities as vectors, with their shape checked.
fn take_state(
    coords: &PyReadonlyArray2<'_, f64>,
    log_prob: &PyReadonlyArray1<'_, f64>,
) -> PyResult<(usize, usize, Vec<f64>, Vec<f64>)> {
    let shape = coords.shape();
    let (nw, dim) = (shape[0], shape[1]);
    if log_prob.len() != nw {
        return Err(PyValueError::new_err(format!("log_prob has {} entries for {nw} walkers", log_prob.len())));
    }
    Ok((nw, dim, coords.as_array().iter().copied().collect(), log_prob.as_array().iter().copied().collect()))
}

impl PyEmceeMove {
    /// One step on `positions`/`ln_probs` in place (the draws of walker `k`
    /// from `walker_rng(seed, k)`, in the order of the core's `moves::step`).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        py: Python<'_>,
        seed: u64,
        nw: usize,
        dim: usize,
        positions: &mut [f64],
        ln_probs: &mut [f64],
        evaluate: &Bound<'_, PyAny>,
        accepted: &mut [bool],
    ) -> PyResult<()> {
        let proposal = self.spec.proposal();
        let mut rngs = walker_rngs(seed, nw);
        let sets: Vec<Vec<usize>> = match proposal.layout() {
            Layout::All => vec![(0..nw).collect()],
            Layout::Splits { nsplits, randomize } => {
                let mut labels = Vec::with_capacity(nw);
                split_labels(nw, nsplits, randomize, &mut rngs[0], &mut labels);
                (0..nsplits).map(|s| (0..nw).filter(|&k| labels[k] == s).collect()).collect()
            }
        };
        for s in 0..sets.len() {
            let active = &sets[s];
            let complement: Vec<Vec<usize>> = (0..sets.len()).filter(|&j| j != s).map(|j| sets[j].clone()).collect();
            let n = active.len();
            let mut q = vec![0.0; n * dim];
            let mut factors = vec![0.0; n];
            {
                let ctx = Ctx { positions, ln_probs, n_walkers: nw, dim };
                proposal.propose(&mut self.tuning, &ctx, active, &complement, &mut rngs, &mut q, &mut factors).py()?;
            }
            let qa = PyArray1::from_slice(py, &q).reshape([n, dim])?;
            let idx = PyArray1::from_iter(py, active.iter().map(|&k| k as i64));
            let out = evaluate.call1((qa, idx))?;
            let lp: PyReadonlyArray1<f64> = out.extract().map_err(|_| {
                PyValueError::new_err("the log-probabilities of a batch must be a 1-D float64 array (internal error)")
            })?;
            let lp = lp.as_slice()?;
            if lp.len() != n {
                return Err(PyValueError::new_err(format!("{} log-probabilities for {n} proposals", lp.len())));
            }
            for (i, &k) in active.iter().enumerate() {
                let u: f64 = rngs[k].random();
                let lnpdiff = factors[i] + lp[i] - ln_probs[k];
                // ln u < 0 on [0, 1): a difference >= 0 accepts whatever u is.
                if lnpdiff >= 0.0 || u.ln() < lnpdiff {
                    positions[k * dim..(k + 1) * dim].copy_from_slice(&q[i * dim..(i + 1) * dim]);
                    ln_probs[k] = lp[i];
                    accepted[k] = true;
                }
            }
        }
        proposal.after_step(&mut self.tuning, accepted);
        Ok(())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEmceeMove>()?;
    Ok(())
}
