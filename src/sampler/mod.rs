//! The affine-invariant ensemble sampler (Goodman & Weare 2010, as in emcee) and
//! its chain.

pub mod accept;
pub mod chain;
pub mod ensemble;
pub mod moves;
pub mod rng;

pub use chain::{Chain, ConvergenceReport};
pub use ensemble::{CheckpointSink, EnsembleSampler, InitMethod, ProgressInfo, RunOptions, RunOutcome, SamplerState};
