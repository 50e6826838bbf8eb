//! Built-in models: toy densities for tests and benchmarks, and climate models.
//! [`registry`] maps a run file's `[model]` section to one of them.

pub mod forcing;
pub mod python;
pub mod registry;
#[cfg(feature = "rscm")]
pub mod rscm;
pub mod toy;
pub mod two_layer;
pub mod work;
