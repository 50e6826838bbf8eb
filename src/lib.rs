//! # climcal
//!
//! Calibration of reduced-complexity climate models: priors, targets, likelihoods,
//! an affine-invariant ensemble sampler (Goodman & Weare 2010, as in emcee) with
//! bitwise-reproducible chains, diagnostics, point estimates, HDF5 chain files and
//! MPI execution.
//!
//! ```
//! use climcal::prelude::*;
//!
//! // Any log-density works, like emcee's log_prob_fn:
//! let density = FnDensity::new(3, |x: &[f64]| -0.5 * x.iter().map(|v| v * v).sum::<f64>());
//! let sampler = EnsembleSampler::new(density, 42).with_n_walkers(32)?;
//! let mut state = sampler.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 3], radius: 1e-2 })?;
//! let chain = sampler.run(&mut state, 200, &RunOptions::default())?;
//! assert_eq!(chain.samples().shape(), &[200, 32, 3]);
//! assert!(chain.mean_acceptance_rate() > 0.2);
//! # Ok::<(), climcal::Error>(())
//! ```

// Checks are written `!(x < limit)` on purpose: the comparison is false for NaN,
// so a NaN fails the check instead of slipping through as `x >= limit` would.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod alignment;
pub mod config;
pub mod density;
pub mod derived;
pub mod diagnostics;
pub mod distribution;
pub mod ensemble;
pub mod error;
pub mod executor;
pub mod likelihood;
pub mod limits;
pub mod models;
pub mod optimizer;
pub mod parameter;
pub mod posterior;
pub mod projection;
pub mod runner;
pub mod sampler;
pub mod storage;
pub mod target;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};

/// The names most programs need.
pub mod prelude {
    pub use crate::density::{FnDensity, LogDensity};
    pub use crate::distribution::{Bound, Distribution, LogNormal, Normal, PriorSpec, TruncatedNormal, Uniform};
    pub use crate::error::{Error, Result};
    pub use crate::executor::{Executor, RayonExecutor, SerialExecutor};
    pub use crate::likelihood::{GaussianLikelihood, LikelihoodFn};
    pub use crate::parameter::{ParameterDef, ParameterSet, Transform};
    pub use crate::posterior::Posterior;
    pub use crate::runner::{ClosureRunner, ModelOutput, ModelRunner};
    pub use crate::sampler::{Chain, EnsembleSampler, InitMethod, ProgressInfo, RunOptions, SamplerState};
    pub use crate::target::{Observation, SigmaSource, Target};
}
