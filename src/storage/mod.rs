//! Chain files (HDF5, emcee-compatible layout) and in-memory chain storage.
//! See DESIGN.md "Chain file".
//!
//! Layout of a climcal chain file:
//!
//! - group `mcmc`, as emcee's `HDFBackend` writes it: attrs `version`, `nwalkers`,
//!   `ndim`, `iteration` (rows stored; the commit point), `has_blobs`; datasets
//!   `chain (rows, nwalkers, ndim)`, `log_prob (rows, nwalkers)` (a run places
//!   the rows it will commit when it starts, as emcee's backend grows its
//!   datasets before sampling: rows past `iteration` are zeros), `accepted
//!   (nwalkers)` (float64, as emcee; scaled by rows/steps when thinned so that
//!   emcee's `accepted / iteration` is the acceptance fraction) and
//!   `blobs (rows, nwalkers, n_blobs)`.
//! - group `climcal`: attrs `format_version`, `crate_version`, `seed`, `thin`,
//!   `n_steps_target`, `model`, `config_toml`, `config_dir`, `fingerprint`,
//!   `ranks`, `threads`, `wall_seconds`, `checkpoint_seconds`, `n_checkpoints`,
//!   `eval_seconds`, `comm_seconds`, `wait_seconds` (rank 0's split of the last
//!   run); datasets `rank_times (ranks, 5)` (per MPI rank of the last run:
//!   evaluations, failures, evaluating / communicating / waiting seconds, updated
//!   at every checkpoint; see [`RankTimesSource`]), `param_names`, `units`, `priors` (JSON), `transforms`, `blob_names`,
//!   `derived_names`, `derived_units`, `derived_descriptions` (the derived
//!   quantities of [`crate::derived`], stored as the last blob columns);
//!   and two state slots `state0`/`state1` (attrs `valid`, `serial`, `rows`,
//!   `iteration`, `failures`; datasets `positions` (sampler space), `ln_probs`,
//!   `blobs`, `rngs (nwalkers, 4)` as [`crate::sampler::rng::rng_to_words`],
//!   `accepted` (u64, exact counts)); files written by `Chain::save` have no
//!   slots but `climcal/accepted`, `n_steps` and `failures`.
//!
//! Each checkpoint opens the file, appends the new rows, flushes, writes the
//! state into the slot not holding the last commit, flushes, marks it valid,
//! flushes, then bumps `mcmc.iteration` (the commit point), flushes and closes.
//! A reader or a resume uses the newest valid slot whose `rows` equals
//! `iteration` and ignores rows past `iteration`, so a kill at any moment leaves
//! a consistent file.
//!
//! Live readers. The writer opens the file without HDF5's file lock, so stock
//! readers — `h5py.File(path, "r")`, `emcee.backends.HDFBackend(path,
//! read_only=True)`, `climcal.load`, `climcal info` — never get "unable to lock
//! file" during a checkpoint, and a reader polling however often never makes the
//! writer wait (with the lock, measured on a 2-core machine: 341 of 2700 reads
//! every 2 ms failed, and the writer waited for the readers' locks). What keeps an unlocked reader's view consistent: a
//! new file appears (by rename) only with both state slots written, so
//! checkpoints of a live file never create objects; while the run goes on the
//! file is kept longer than HDF5's allocated end by more than a checkpoint adds
//! (renewed after each flush, as HDF5 trims the file at flushes), so a reader
//! never finds the superblock's end of file past the file's end ("truncated
//! file"), however long it takes between checking the file's length and reading
//! the superblock; the sink trims the margin when it is dropped; committed rows
//! are never rewritten.
//! Writers do not exclude each other through HDF5 either: each checkpoint checks
//! that the newest state slot is its own last commit, so a second process writing
//! the same file is an error at the next checkpoint.

use std::ops::Range;
use std::path::Path;

use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::sampler::{Chain, CheckpointSink, RunOptions, SamplerState};

#[cfg(feature = "hdf5")]
pub mod emcee;
#[cfg(feature = "hdf5")]
pub mod ensemble;
#[cfg(feature = "hdf5")]
mod h5io;
#[cfg(feature = "hdf5")]
pub mod hdf;
#[cfg(feature = "hdf5")]
pub mod projection;

#[cfg(feature = "hdf5")]
pub use hdf::{read_chain, read_eval_times, read_rank_times, read_resume, set_eval_times, write_chain, HdfSink, ResumePoint};

#[cfg(not(feature = "hdf5"))]
mod nohdf;
#[cfg(not(feature = "hdf5"))]
pub use nohdf::{read_chain, read_eval_times, read_rank_times, read_resume, set_eval_times, write_chain, HdfSink, ResumePoint};

/// Where a chain-file sink gets the per-rank figures it stores at each
/// checkpoint (`climcal/rank_times`): on rank 0 of an MPI run, the coordinator's
/// executor ([`crate::executor::mpi::MpiExecutor::rank_stats`]). The workers never
/// touch the file; rank 0 already holds their figures (they come with each result).
/// Timings are not part of the chain: the determinism tests compare the `mcmc`
/// datasets, never these.
#[derive(Clone)]
pub struct RankTimesSource(pub std::sync::Arc<dyn Fn() -> Vec<crate::executor::RankStats> + Send + Sync>);

impl std::fmt::Debug for RankTimesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RankTimesSource(..)")
    }
}

/// Columns of `climcal/rank_times`, one row per MPI rank (rank 0 first).
pub const RANK_TIME_COLUMNS: [&str; 5] = ["evaluations", "failures", "eval_seconds", "comm_seconds", "wait_seconds"];

/// Version of the `climcal` group layout.
pub const FORMAT_VERSION: u32 = 1;

/// What a chain file records besides the rows (the `climcal` group).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainMeta {
    /// Parameter names.
    pub names: Vec<String>,
    /// Units (empty strings when unknown).
    pub units: Vec<String>,
    /// Priors as JSON ([`crate::distribution::PriorSpec`]) or empty.
    pub priors: Vec<String>,
    /// Transforms (`identity`, `log`, `logit`).
    pub transforms: Vec<String>,
    /// One label per blob value of the model at the observation times (`variable@time`).
    pub blob_names: Vec<String>,
    /// Derived quantities ([`crate::derived`]): the last `derived_names.len()` blob
    /// columns, with their units and descriptions (empty when none).
    pub derived_names: Vec<String>,
    pub derived_units: Vec<String>,
    pub derived_descriptions: Vec<String>,
    /// The run file's TOML text (empty when the chain did not come from one).
    pub config_toml: String,
    /// Directory the run file's relative paths resolve against.
    pub config_dir: String,
    /// `[model] name`.
    pub model: String,
    /// What a resume must match (see [`crate::config::Problem::fingerprint`]).
    pub fingerprint: String,
    /// Sampler seed.
    pub seed: u64,
    /// Thinning of stored rows.
    pub thin: usize,
    /// Total steps the run was asked for (resume continues to it by default).
    pub n_steps_target: u64,
    /// MPI ranks and threads per rank of the (last) run.
    pub ranks: usize,
    pub threads: usize,
    /// climcal version that wrote the file.
    pub crate_version: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Wall time (s) of the runs that wrote the file, and time spent checkpointing.
    pub wall_seconds: f64,
    pub checkpoint_seconds: f64,
    pub n_checkpoints: u64,
}

impl ChainMeta {
    /// Minimal metadata for a density: names `p0…` or its own, no priors.
    pub fn for_density(density: &dyn LogDensity, seed: u64, thin: usize) -> Self {
        let names = density.param_names();
        let d = names.len();
        Self {
            names,
            units: vec![String::new(); d],
            priors: vec![String::new(); d],
            transforms: vec!["identity".into(); d],
            seed,
            thin,
            ranks: 1,
            threads: 1,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            format_version: FORMAT_VERSION,
            ..Default::default()
        }
    }
}

/// Where chains are kept: a whole chain at once (`save`/`load`) or appended at
/// checkpoints (`append`), as DESIGN.md's `ChainStorage { save, load, append }`.
/// Every `ChainStorage` is a [`CheckpointSink`].
pub trait ChainStorage {
    /// Store a whole chain, replacing what was there.
    fn save(&mut self, chain: &Chain) -> Result<()>;
    /// The chain stored so far.
    fn load(&self) -> Result<Chain>;
    /// Append rows `rows` of `chain` and the sampler state after them.
    fn append(&mut self, chain: &Chain, rows: Range<usize>, state: &SamplerState) -> Result<()>;
}

impl<T: ChainStorage + ?Sized> CheckpointSink for T {
    fn checkpoint(&mut self, chain: &Chain, new_rows: Range<usize>, state: &SamplerState) -> Result<()> {
        self.append(chain, new_rows, state)
    }
}

/// Chain storage in memory (the last state is kept too).
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    chain: Option<Chain>,
    /// The state at the last `append`.
    pub state: Option<SamplerState>,
}

impl MemoryStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ChainStorage for MemoryStorage {
    fn save(&mut self, chain: &Chain) -> Result<()> {
        self.chain = Some(chain.clone());
        Ok(())
    }
    fn load(&self) -> Result<Chain> {
        self.chain.clone().ok_or_else(|| Error::InvalidSampler("memory storage holds no chain yet".into()))
    }
    fn append(&mut self, chain: &Chain, rows: Range<usize>, state: &SamplerState) -> Result<()> {
        let (nw, dim, nb) = (chain.n_walkers(), chain.dim(), chain.n_blobs());
        let c = self.chain.get_or_insert_with(|| Chain::new(chain.names().to_vec(), nw, dim, nb, chain.thin()));
        let s = chain.samples_raw();
        let l = chain.ln_probs_raw();
        let b = chain.blobs_raw();
        for r in rows {
            c.push_row(
                &s[r * nw * dim..(r + 1) * nw * dim],
                &l[r * nw..(r + 1) * nw],
                if nb > 0 { &b[r * nw * nb..(r + 1) * nw * nb] } else { &[] },
            );
        }
        let mut totals = Chain::new(chain.names().to_vec(), nw, dim, nb, chain.thin());
        totals.set_totals(state.iteration, state.accepted.clone(), state.failures);
        c.extend(&totals);
        self.state = Some(state.clone());
        Ok(())
    }
}

/// A checkpoint sink writing to `path` (feature `hdf5`), used by
/// [`RunOptions::checkpoint_path`]. A new file is created; an existing one is
/// appended to only when it ends exactly where `state` is (same walkers,
/// dimension and iteration: the continuation of the same run), otherwise it is
/// an error and the file is left alone.
pub fn create_sink(
    path: &Path,
    density: &dyn LogDensity,
    seed: u64,
    state: &SamplerState,
    opts: &RunOptions,
) -> Result<Box<dyn CheckpointSink>> {
    #[cfg(feature = "hdf5")]
    {
        let n_blobs = if opts.store_blobs { density.n_blobs() } else { 0 };
        if path.exists() {
            let (sink, point) = HdfSink::open_resume(path)?;
            let st = &point.state;
            if st.n_walkers == state.n_walkers
                && st.dim == state.dim
                && st.iteration == state.iteration
                && point.meta.thin == opts.thin
                && sink.n_blobs() == n_blobs
            {
                return Ok(Box::new(sink));
            }
            return Err(Error::ChainFile {
                path: path.to_path_buf(),
                reason: format!(
                    "exists and holds another run (iteration {} with {} walkers × {} parameters, this state is at iteration {} with {} × {}); remove it or choose another path",
                    st.iteration, st.n_walkers, st.dim, state.iteration, state.n_walkers, state.dim
                ),
            });
        }
        let meta = ChainMeta::for_density(density, seed, opts.thin);
        Ok(Box::new(HdfSink::create(path, &meta, state, n_blobs, false)?))
    }
    #[cfg(not(feature = "hdf5"))]
    {
        let _ = (density, seed, state, opts);
        Err(Error::Unsupported(format!(
            "cannot write {}: chain files need the `hdf5` feature (cargo build --features hdf5)",
            path.display()
        )))
    }
}

impl Chain {
    /// Read a chain file (feature `hdf5`): climcal's, or emcee's own `HDFBackend` files (no
    /// `climcal` group: parameters are named `p0, p1, …`, thin 1). Only committed
    /// rows (up to `mcmc.iteration`) are read.
    pub fn load(path: impl AsRef<Path>) -> Result<Chain> {
        read_chain(path.as_ref()).map(|(c, _)| c)
    }

    /// Write this chain (feature `hdf5`) to a new HDF5 file in the same layout (replacing an
    /// existing file at `path`). The file holds no sampler state, so it cannot be
    /// resumed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_chain(path.as_ref(), self, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::FnDensity;
    use crate::sampler::{EnsembleSampler, InitMethod};

    #[test]
    fn memory_storage_collects_all_rows() {
        let d = FnDensity::new(2, |x: &[f64]| -0.5 * (x[0] * x[0] + x[1] * x[1]));
        let s = EnsembleSampler::new(d, 3).serial().with_n_walkers(8).unwrap();
        let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 2], radius: 0.1 }).unwrap();
        let opts = RunOptions { checkpoint_every: 7, ..Default::default() };
        let mut mem = MemoryStorage::new();
        let (chain, _) = s.run_with_sink(&mut st, 30, &opts, Some(&mut mem), |_| std::ops::ControlFlow::Continue(())).unwrap();
        let got = mem.load().unwrap();
        assert_eq!(got.samples_raw(), chain.samples_raw());
        assert_eq!(got.accepted(), chain.accepted());
        assert_eq!(got.n_steps(), 30);
        assert_eq!(mem.state.unwrap(), st);
    }
}
