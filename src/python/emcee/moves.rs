//! `EmceeMove`: one built-in move (`crate::sampler::moves`) driven a step at
//! a time from Python.
//!
//! emcee's `EnsembleSampler` picks a move per step and calls its
//! `propose(model, state)`. `climcal.emcee`'s sampler runs its loop on the
//! engine (`super::engine`) whenever every move is built in; a built-in move
//! in a mixture with moves written in Python is stepped here instead, by the
//! Python loop: the split, the proposals, their Metropolis–Hastings factors,
//! the acceptance draws and the move's tuning state are Rust (the same
//! [`super::engine::step`] as the engine's), and Python is called once per set
//! of the split (once per step for a Gaussian move) with the proposals, to
//! return their log-probabilities.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::engine::{step, Walkers};
use crate::python::IntoPyResult;
use crate::sampler::moves::{MoveSpec, MoveTuning, Moves};

/// One built-in move with its tuning state (native part of
/// ``climcal.emcee.moves``).
#[pyclass(name = "EmceeMove", module = "climcal._lib")]
pub struct PyEmceeMove {
    /// The move, as a mixture of one (no draw for the choice).
    moves: Moves,
    /// Its tuning state (one entry).
    tuning: Vec<MoveTuning>,
}

#[pymethods]
impl PyEmceeMove {
    /// From a move table as JSON (``{"kind": "stretch", "a": 2.0, ...}``).
    #[new]
    fn new(spec_json: &str) -> PyResult<Self> {
        let spec: MoveSpec =
            serde_json::from_str(spec_json).map_err(|e| PyValueError::new_err(format!("invalid move {spec_json}: {e}")))?;
        Ok(Self { moves: Moves::single(spec), tuning: vec![MoveTuning::None] })
    }

    /// The move's tuning state as JSON (pickling).
    fn tuning_json(&self) -> String {
        serde_json::to_string(&self.tuning[0]).expect("tuning serialises")
    }

    /// Restore [`tuning_json`].
    fn set_tuning_json(&mut self, text: &str) -> PyResult<()> {
        self.tuning[0] = serde_json::from_str(text).map_err(|e| PyValueError::new_err(format!("invalid move tuning: {e}")))?;
        Ok(())
    }

    /// Forget the tuning state.
    fn reset_tuning(&mut self) {
        self.tuning[0] = MoveTuning::None;
    }

    /// Check the move against an ensemble of `nwalkers × ndim`.
    fn validate(&self, nwalkers: usize, ndim: usize) -> PyResult<()> {
        self.moves.validate(nwalkers, ndim).py()
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
        let mut w = Walkers::take(&coords, &log_prob, None)?;
        let (nw, dim) = (w.nw, w.dim);
        self.moves.validate(nw, dim).py()?;
        let mut accepted = vec![false; nw];
        let mut eval = |q: &[f64], active: &[usize], lp: &mut Vec<f64>, _blobs: &mut Vec<u8>| -> PyResult<bool> {
            let n = active.len();
            let qa = PyArray1::from_slice(py, q).reshape([n, dim])?;
            let idx = PyArray1::from_iter(py, active.iter().map(|&k| k as i64));
            let out = evaluate.call1((qa, idx))?;
            let l: PyReadonlyArray1<f64> = out.extract().map_err(|_| {
                PyValueError::new_err("the log-probabilities of a batch must be a 1-D float64 array (internal error)")
            })?;
            lp.extend_from_slice(l.as_slice()?);
            Ok(false)
        };
        step(&self.moves, &mut self.tuning, seed, &mut w, &mut accepted, &mut eval)?;
        let pos = PyArray1::from_vec(py, w.positions).reshape([nw, dim])?;
        Ok((pos, PyArray1::from_vec(py, w.ln_probs), PyArray1::from_vec(py, accepted)))
    }

    /// The move's name as emcee spells its class.
    #[getter]
    fn name(&self) -> &'static str {
        self.moves.entries()[0].0.name()
    }
}
