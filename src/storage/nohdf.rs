//! Stand-ins for the HDF5 chain-file API when climcal is built without the `hdf5`
//! feature: the same names, each returning [`Error::Unsupported`] with the fix, so
//! that callers (the CLI, bindings) compile either way.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{ChainMeta, ChainStorage};
use crate::error::{Error, Result};
use crate::sampler::{Chain, SamplerState};

fn unsupported<T>(path: &Path) -> Result<T> {
    Err(Error::Unsupported(format!(
        "cannot use chain file {}: this climcal was built without the `hdf5` feature (rebuild with --features hdf5)",
        path.display()
    )))
}

/// See the `hdf5` build's `ResumePoint`.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    pub state: SamplerState,
    pub meta: ChainMeta,
    pub rows: usize,
}

/// See the `hdf5` build's `HdfSink`; every operation fails here.
#[derive(Debug)]
pub struct HdfSink {
    path: PathBuf,
}

impl HdfSink {
    pub fn create(path: &Path, _meta: &ChainMeta, _state: &SamplerState, _n_blobs: usize, _overwrite: bool) -> Result<Self> {
        unsupported(path)
    }
    pub fn open_resume(path: &Path) -> Result<(Self, ResumePoint)> {
        unsupported(path)
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn n_blobs(&self) -> usize {
        0
    }
    pub fn rows(&self) -> usize {
        0
    }
    pub fn checkpoint_seconds(&self) -> f64 {
        0.0
    }
    pub fn set_run_info(&self, _ranks: usize, _threads: usize, _n_steps_target: u64) -> Result<()> {
        unsupported(&self.path)
    }
    pub fn record_rank_times(&mut self, _source: super::RankTimesSource) {}
}

impl ChainStorage for HdfSink {
    fn save(&mut self, _chain: &Chain) -> Result<()> {
        unsupported(&self.path)
    }
    fn load(&self) -> Result<Chain> {
        unsupported(&self.path)
    }
    fn append(&mut self, _chain: &Chain, _rows: Range<usize>, _state: &SamplerState) -> Result<()> {
        unsupported(&self.path)
    }
}

/// Fails: needs the `hdf5` feature.
pub fn read_chain(path: &Path) -> Result<(Chain, Option<ChainMeta>)> {
    unsupported(path)
}
/// Fails: needs the `hdf5` feature.
pub fn read_resume(path: &Path) -> Result<ResumePoint> {
    unsupported(path)
}
/// Fails: needs the `hdf5` feature.
pub fn write_chain(path: &Path, _chain: &Chain, _meta: Option<&ChainMeta>) -> Result<()> {
    unsupported(path)
}
/// Without the `hdf5` feature there are no stored timings.
pub fn read_eval_times(_path: &Path) -> Option<[f64; 3]> {
    None
}
/// Without the `hdf5` feature there are no stored timings.
pub fn read_rank_times(_path: &Path) -> Option<Vec<crate::executor::RankStats>> {
    None
}
/// Fails: needs the `hdf5` feature.
pub fn set_eval_times(path: &Path, _stats: &crate::executor::EvalStats) -> Result<()> {
    unsupported(path)
}
