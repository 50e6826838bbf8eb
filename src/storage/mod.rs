//! Chain files (HDF5, emcee-compatible layout). See DESIGN.md "Chain file".

use std::path::Path;

use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::sampler::{CheckpointSink, RunOptions, SamplerState};

/// A checkpoint sink writing to `path` (feature `hdf5`).
pub fn create_sink(
    path: &Path,
    density: &dyn LogDensity,
    seed: u64,
    state: &SamplerState,
    opts: &RunOptions,
) -> Result<Box<dyn CheckpointSink>> {
    let _ = (density, seed, state, opts);
    Err(Error::Unsupported(format!(
        "cannot write {}: chain files need the `hdf5` feature",
        path.display()
    )))
}
