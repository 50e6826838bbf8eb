//! `climcal.emcee`'s native part: the core's moves (`crate::sampler::moves`)
//! driven from emcee's `EnsembleSampler` API.
//!
//! - [`engine`]: `EmceeEngine`, the sampler's loop — a weighted list of
//!   built-in moves with their tuning state, making many steps per call and
//!   keeping the chain rows, acceptance masks and blobs (as raw bytes) of every
//!   `thin_by`-th step. Python is called only for the log-probabilities. A
//!   built-in move's own `propose(model, state)` (a step of the loop that runs
//!   in Python, in a mixture with moves written in Python) is a one-move
//!   engine making one step.
//!
//! Random numbers: each step gets a 64-bit seed (drawn by the Python sampler
//! from its numpy `RandomState`, so `random_state` alone fixes what follows,
//! as in emcee) and draws for walker `k` from `walker_rng(seed, k)`, in the
//! order of the core's general step (`moves::step`): which move of a mixture
//! (walker 0's stream; no draw for one move), the split, the proposals, the
//! acceptance draws.

use pyo3::prelude::*;

mod engine;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::PyEmceeEngine>()?;
    Ok(())
}
