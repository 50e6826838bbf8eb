//! `EmceeEngine`: the loop of `climcal.emcee`'s `EnsembleSampler` in Rust.
//!
//! It owns the sampler's weighted list of built-in moves (the core's
//! [`Moves`]) and their configuration and tuning state ([`MoveState`], the
//! form chain files store), and makes many steps per call: for each step the
//! choice of a move of the mixture, the split into sets, the proposals, their
//! Metropolis–Hastings factors, the acceptance draws, the moves' tuning
//! (`after_step`: DIME's proposal, the Gaussian `sequential` index) and, for
//! every `thin_by`-th step, the kept rows: positions, log-probabilities,
//! acceptance masks and blobs. Python is called back once per set of
//! proposals (a half-ensemble for the stretch move) for their
//! log-probabilities and blobs.
//!
//! Blobs are bytes here: each walker's blob is `width` raw bytes (the Python
//! side views a blob array of a fixed, non-object numpy dtype as `uint8`), and
//! an accepted proposal's bytes replace its walker's. Object blobs (Python
//! objects) cannot be bytes; the Python sampler keeps those on its own loop.
//!
//! A call that fails (the log-probability raised, e.g. `KeyboardInterrupt`)
//! leaves the tuning state as it was before the call, so the engine stays the
//! state of the last stored step.

use numpy::ndarray as nd;
use numpy::{PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::Rng;

use crate::python::IntoPyResult;
use crate::sampler::moves::{split_labels, Ctx, Layout, MoveState, MoveTuning, Moves};
use crate::sampler::rng::walker_rngs;

/// The walkers during a run: positions `nw × dim` (row-major),
/// log-probabilities, and each walker's blob as `width` raw bytes (`width = 0`:
/// no blobs).
struct Walkers {
    pub nw: usize,
    pub dim: usize,
    pub positions: Vec<f64>,
    pub ln_probs: Vec<f64>,
    pub blobs: Vec<u8>,
    pub width: usize,
}

impl Walkers {
    /// From the arrays Python passes, with their shapes checked.
    pub fn take(
        coords: &PyReadonlyArray2<'_, f64>,
        log_prob: &PyReadonlyArray1<'_, f64>,
        blobs: Option<&PyReadonlyArray2<'_, u8>>,
    ) -> PyResult<Self> {
        let shape = coords.shape();
        let (nw, dim) = (shape[0], shape[1]);
        if log_prob.len() != nw {
            return Err(PyValueError::new_err(format!("log_prob has {} entries for {nw} walkers", log_prob.len())));
        }
        let (blob_bytes, width) = match blobs {
            None => (Vec::new(), 0),
            Some(b) => {
                if b.shape()[0] != nw {
                    return Err(PyValueError::new_err(format!("blobs have {} rows for {nw} walkers", b.shape()[0])));
                }
                (b.as_array().iter().copied().collect(), b.shape()[1])
            }
        };
        Ok(Self {
            nw,
            dim,
            positions: coords.as_array().iter().copied().collect(),
            ln_probs: log_prob.as_array().iter().copied().collect(),
            blobs: blob_bytes,
            width,
        })
    }
}

/// An evaluation of a batch: `evaluate(q, active, lp, blobs)` fills `lp` with
/// one log-probability per proposal (rows of `q`, for walkers `active`) and
/// returns `true` when it also filled `blobs` (`width` bytes per proposal).
type Evaluate<'a> = dyn FnMut(&[f64], &[usize], &mut Vec<f64>, &mut Vec<u8>) -> PyResult<bool> + 'a;

/// One step of `moves` on `w` in place, with `tuning` the moves' tuning
/// state (one per move): the draws of walker `k` from `walker_rng(seed, k)`,
/// in the order of the core's `moves::step` (the move of a mixture from
/// walker 0's stream, no draw for one move; the split; the proposals; `u`).
fn step(
    moves: &Moves,
    tuning: &mut [MoveTuning],
    seed: u64,
    w: &mut Walkers,
    accepted: &mut [bool],
    evaluate: &mut Evaluate<'_>,
) -> PyResult<()> {
    let (nw, dim, width) = (w.nw, w.dim, w.width);
    let mut rngs = walker_rngs(seed, nw);
    let which = moves.choose(&mut rngs[0]);
    let proposal = moves.entries()[which].0.proposal();
    accepted.fill(false);
    let sets: Vec<Vec<usize>> = match proposal.layout() {
        Layout::All => vec![(0..nw).collect()],
        Layout::Splits { nsplits, randomize } => {
            let mut labels = Vec::with_capacity(nw);
            split_labels(nw, nsplits, randomize, &mut rngs[0], &mut labels);
            (0..nsplits).map(|s| (0..nw).filter(|&k| labels[k] == s).collect()).collect()
        }
    };
    let mut lp = Vec::new();
    let mut new_blobs = Vec::new();
    for s in 0..sets.len() {
        let active = &sets[s];
        let complement: Vec<Vec<usize>> = (0..sets.len()).filter(|&j| j != s).map(|j| sets[j].clone()).collect();
        let n = active.len();
        let mut q = vec![0.0; n * dim];
        let mut factors = vec![0.0; n];
        {
            let ctx = Ctx { positions: &w.positions, ln_probs: &w.ln_probs, n_walkers: nw, dim };
            proposal.propose(&mut tuning[which], &ctx, active, &complement, &mut rngs, &mut q, &mut factors).py()?;
        }
        lp.clear();
        new_blobs.clear();
        let has_blobs = evaluate(&q, active, &mut lp, &mut new_blobs)?;
        if lp.len() != n {
            return Err(PyValueError::new_err(format!("{} log-probabilities for {n} proposals", lp.len())));
        }
        if has_blobs && new_blobs.len() != n * width {
            return Err(PyValueError::new_err(format!(
                "blobs of {} bytes for {n} proposals of {width} bytes each",
                new_blobs.len()
            )));
        }
        for (i, &k) in active.iter().enumerate() {
            let u: f64 = rngs[k].random();
            let lnpdiff = factors[i] + lp[i] - w.ln_probs[k];
            // ln u < 0 on [0, 1): a difference >= 0 accepts whatever u is.
            if lnpdiff >= 0.0 || u.ln() < lnpdiff {
                w.positions[k * dim..(k + 1) * dim].copy_from_slice(&q[i * dim..(i + 1) * dim]);
                w.ln_probs[k] = lp[i];
                if has_blobs && width > 0 {
                    w.blobs[k * width..(k + 1) * width].copy_from_slice(&new_blobs[i * width..(i + 1) * width]);
                }
                accepted[k] = true;
            }
        }
    }
    proposal.after_step(&mut tuning[which], accepted);
    Ok(())
}

/// The loop of `climcal.emcee.EnsembleSampler` on its built-in moves (native
/// part of ``climcal.emcee``): a weighted list of moves with their tuning state.
#[pyclass(name = "EmceeEngine", module = "climcal._lib")]
pub struct PyEmceeEngine {
    moves: Moves,
    state: MoveState,
}

/// The kept rows of a run and the walkers at its end.
type RunOut<'py> = (
    Bound<'py, PyArray3<f64>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<bool>>,
    Option<Bound<'py, PyArray3<u8>>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<f64>>,
    Option<Bound<'py, PyArray2<u8>>>,
);

#[pymethods]
impl PyEmceeEngine {
    /// From the moves as a JSON list of tables ``[{"kind": "de", "weight":
    /// 0.8, ...}, ...]`` (the core's `Moves`), with fresh tuning.
    #[new]
    fn new(moves_json: &str) -> PyResult<Self> {
        let moves = Moves::from_json(moves_json).py()?;
        let mut state = MoveState::default();
        state.adopt(&moves);
        Ok(Self { moves, state })
    }

    /// The moves' configuration and tuning state as JSON (the core's
    /// `MoveState`: ``{"moves": [...], "tuning": [...]}``, as chain files store it).
    fn state_json(&self) -> String {
        self.state.to_json()
    }

    /// Take the tuning state of [`state_json`] when it belongs to these moves
    /// (the same moves and weights: the core's `adopt`); returns whether it
    /// did. A state of other moves leaves the tuning as it is.
    fn set_state_json(&mut self, text: &str) -> PyResult<bool> {
        let st = MoveState::from_json(text).py()?;
        if st.moves.as_ref() == Some(&self.moves) && st.tuning.len() == self.moves.entries().len() {
            self.state = st;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Forget the tuning state.
    fn reset_tuning(&mut self) {
        self.state = MoveState::default();
        self.state.adopt(&self.moves);
    }

    /// Check the moves against an ensemble of `nwalkers × ndim`.
    fn validate(&self, nwalkers: usize, ndim: usize) -> PyResult<()> {
        self.moves.validate(nwalkers, ndim).py()
    }

    /// The moves' names as emcee spells their classes.
    #[getter]
    fn names(&self) -> Vec<&'static str> {
        self.moves.entries().iter().map(|(m, _)| m.name()).collect()
    }

    /// `len(seeds)` steps (one seed each) from the walkers `coords`
    /// `(nwalkers, ndim)`, `log_prob` and `blobs` (`None`, or `uint8`
    /// `(nwalkers, width)`: each walker's blob as raw bytes), keeping every
    /// `thin_by`-th step. `evaluate(q, idx)` returns ``(log_prob, blobs)`` for
    /// the proposals `q` of walkers `idx`: float64 `(n,)`, and `None` or
    /// `uint8` `(n, width)`.
    ///
    /// Returns the kept positions `(n_kept, nwalkers, ndim)`, log-probabilities
    /// and acceptance masks `(n_kept, nwalkers)` and blobs `(n_kept, nwalkers,
    /// width)` (or `None`), and the walkers at the end: positions,
    /// log-probabilities, blobs.
    #[pyo3(signature = (seeds, coords, log_prob, blobs, evaluate, thin_by=1))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        seeds: PyReadonlyArray1<'py, i64>,
        coords: PyReadonlyArray2<'py, f64>,
        log_prob: PyReadonlyArray1<'py, f64>,
        blobs: Option<PyReadonlyArray2<'py, u8>>,
        evaluate: Bound<'py, PyAny>,
        thin_by: usize,
    ) -> PyResult<RunOut<'py>> {
        let mut w = Walkers::take(&coords, &log_prob, blobs.as_ref())?;
        let has_blobs = blobs.is_some();
        let (nw, dim, width) = (w.nw, w.dim, w.width);
        self.moves.validate(nw, dim).py()?;
        let thin_by = thin_by.max(1);
        let seeds = seeds.as_slice()?;
        let n_kept = seeds.len() / thin_by;
        let mut chain = Vec::with_capacity(n_kept * nw * dim);
        let mut lps = Vec::with_capacity(n_kept * nw);
        let mut acc = Vec::with_capacity(n_kept * nw);
        let mut kept_blobs = Vec::with_capacity(n_kept * nw * width);
        let mut accepted = vec![false; nw];
        let mut eval = |q: &[f64], active: &[usize], lp: &mut Vec<f64>, nb: &mut Vec<u8>| -> PyResult<bool> {
            let n = active.len();
            let qa = array2(py, q.to_vec(), [n, dim])?;
            let idx = PyArray1::from_iter(py, active.iter().map(|&k| k as i64));
            let out = evaluate.call1((qa, idx))?;
            let (l, b): (Bound<'py, PyAny>, Bound<'py, PyAny>) = out
                .extract()
                .map_err(|_| PyValueError::new_err("evaluate must return (log_prob, blobs or None) (internal error)"))?;
            let l: PyReadonlyArray1<f64> = l.extract().map_err(|_| {
                PyValueError::new_err("the log-probabilities of a batch must be a 1-D float64 array (internal error)")
            })?;
            lp.extend_from_slice(l.as_slice()?);
            if b.is_none() {
                return Ok(false);
            }
            let b: PyReadonlyArray2<u8> = b
                .extract()
                .map_err(|_| PyValueError::new_err("the blobs of a batch must be a 2-D uint8 array (internal error)"))?;
            if b.shape() != [n, width] {
                return Err(PyValueError::new_err(format!(
                    "blobs of shape {:?} for {n} proposals of {width} bytes each",
                    b.shape()
                )));
            }
            nb.extend(b.as_array().iter().copied());
            Ok(true)
        };
        let saved = self.state.tuning.clone();
        for (i, &seed) in seeds.iter().enumerate() {
            if let Err(e) = step(&self.moves, &mut self.state.tuning, seed as u64, &mut w, &mut accepted, &mut eval) {
                self.state.tuning = saved;
                return Err(e);
            }
            if (i + 1) % thin_by == 0 {
                chain.extend_from_slice(&w.positions);
                lps.extend_from_slice(&w.ln_probs);
                acc.extend_from_slice(&accepted);
                kept_blobs.extend_from_slice(&w.blobs);
            }
        }
        let kept_blobs = if has_blobs { Some(array3(py, kept_blobs, [n_kept, nw, width])?) } else { None };
        let end_blobs = if has_blobs { Some(array2(py, w.blobs, [nw, width])?) } else { None };
        Ok((
            array3(py, chain, [n_kept, nw, dim])?,
            array2(py, lps, [n_kept, nw])?,
            array2(py, acc, [n_kept, nw])?,
            kept_blobs,
            array2(py, w.positions, [nw, dim])?,
            PyArray1::from_vec(py, w.ln_probs),
            end_blobs,
        ))
    }
}

/// A vector as a 2-D array (one Python object: no reshape of a 1-D one).
fn array2<T: numpy::Element>(py: Python<'_>, v: Vec<T>, shape: [usize; 2]) -> PyResult<Bound<'_, PyArray2<T>>> {
    let a = nd::Array2::from_shape_vec(shape, v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyArray2::from_owned_array(py, a))
}

/// A vector as a 3-D array.
fn array3<T: numpy::Element>(py: Python<'_>, v: Vec<T>, shape: [usize; 3]) -> PyResult<Bound<'_, PyArray3<T>>> {
    let a = nd::Array3::from_shape_vec(shape, v).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyArray3::from_owned_array(py, a))
}
