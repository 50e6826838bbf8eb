//! HDF5 chain files (feature `hdf5`): the checkpoint sink, resume and readers.
//! The layout and commit protocol are described in [`crate::storage`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdf5::plist::dataset_create::AllocTime;
use hdf5::{Dataset, File, Group};
use ndarray_h5::{s, ArrayView2, ArrayView3, Ix2, Ix3};

pub(crate) use super::h5io::{
    create_file, ferr, get_attr, get_str_attr, get_text_bytes_attr, h5, is_lock_message, keep_margin, open_retry, put,
    read_strings, set_attr, set_str_attr, set_text_bytes_attr, write_strings,
};
use super::{ChainMeta, ChainStorage, RankTimesSource, FORMAT_VERSION, RANK_TIME_COLUMNS};
use crate::error::Result;
use crate::executor::RankStats;
use crate::sampler::moves::MoveState;
use crate::sampler::rng::{rng_from_words, rng_to_words};
use crate::sampler::{Chain, SamplerState};

/// Give back what a run reserved and did not use: rows past the `rows` committed
/// (a run stopped early), and the margin [`keep_margin`] left (opening the file for
/// writing and closing it makes HDF5 trim it to its allocated end).
fn trim_margin(path: &Path, rows: usize) -> Result<()> {
    let f = open_retry(path, true)?;
    let e = h5(path, "cannot trim");
    if let Ok(g) = f.group("mcmc") {
        if get_attr::<i64>(&g, "iteration").ok() == Some(rows as i64) {
            resize_rows(&g, rows).map_err(&e)?;
        }
    }
    f.close().map_err(&e)
}

fn write_meta(c: &Group, meta: &ChainMeta) -> hdf5::Result<()> {
    set_attr(c, "format_version", &(FORMAT_VERSION as i64))?;
    set_str_attr(c, "crate_version", env!("CARGO_PKG_VERSION"))?;
    set_attr(c, "seed", &meta.seed)?;
    set_attr(c, "thin", &(meta.thin as i64))?;
    set_attr(c, "n_steps_target", &meta.n_steps_target)?;
    set_str_attr(c, "model", &meta.model)?;
    set_str_attr(c, "config_toml", &meta.config_toml)?;
    set_str_attr(c, "config_dir", &meta.config_dir)?;
    set_str_attr(c, "fingerprint", &meta.fingerprint)?;
    set_attr(c, "ranks", &(meta.ranks as i64))?;
    set_attr(c, "threads", &(meta.threads as i64))?;
    set_attr(c, "wall_seconds", &meta.wall_seconds)?;
    set_attr(c, "checkpoint_seconds", &meta.checkpoint_seconds)?;
    set_attr(c, "n_checkpoints", &meta.n_checkpoints)?;
    write_strings(c, "param_names", &meta.names)?;
    write_strings(c, "units", &meta.units)?;
    write_strings(c, "priors", &meta.priors)?;
    write_strings(c, "transforms", &meta.transforms)?;
    if !meta.blob_names.is_empty() {
        write_strings(c, "blob_names", &meta.blob_names)?;
    }
    if !meta.derived_names.is_empty() {
        write_strings(c, "derived_names", &meta.derived_names)?;
        write_strings(c, "derived_units", &meta.derived_units)?;
        write_strings(c, "derived_descriptions", &meta.derived_descriptions)?;
    }
    Ok(())
}

fn read_meta(c: &Group) -> ChainMeta {
    ChainMeta {
        names: read_strings(c, "param_names"),
        units: read_strings(c, "units"),
        priors: read_strings(c, "priors"),
        transforms: read_strings(c, "transforms"),
        blob_names: read_strings(c, "blob_names"),
        derived_names: read_strings(c, "derived_names"),
        derived_units: read_strings(c, "derived_units"),
        derived_descriptions: read_strings(c, "derived_descriptions"),
        config_toml: get_str_attr(c, "config_toml"),
        config_dir: get_str_attr(c, "config_dir"),
        model: get_str_attr(c, "model"),
        fingerprint: get_str_attr(c, "fingerprint"),
        seed: get_attr::<u64>(c, "seed").unwrap_or(0),
        thin: get_attr::<i64>(c, "thin").unwrap_or(1).max(1) as usize,
        n_steps_target: get_attr::<u64>(c, "n_steps_target").unwrap_or(0),
        ranks: get_attr::<i64>(c, "ranks").unwrap_or(1) as usize,
        threads: get_attr::<i64>(c, "threads").unwrap_or(1) as usize,
        crate_version: get_str_attr(c, "crate_version"),
        format_version: get_attr::<i64>(c, "format_version").unwrap_or(0) as u32,
        wall_seconds: get_attr::<f64>(c, "wall_seconds").unwrap_or(0.0),
        checkpoint_seconds: get_attr::<f64>(c, "checkpoint_seconds").unwrap_or(0.0),
        n_checkpoints: get_attr::<u64>(c, "n_checkpoints").unwrap_or(0),
    }
}

/// Rows per chunk: about 256 KiB of chain per chunk, at least one row.
fn chunk_rows(nw: usize, dim: usize) -> usize {
    (262_144 / (nw * dim.max(1) * 8).max(1)).clamp(1, 4096)
}

/// Create the `mcmc` group with empty resizable datasets, as emcee's `reset`.
fn create_mcmc(f: &File, nw: usize, dim: usize, nb: usize) -> hdf5::Result<Group> {
    let g = f.create_group("mcmc")?;
    set_str_attr(&g, "version", concat!("climcal ", env!("CARGO_PKG_VERSION")))?;
    set_attr(&g, "nwalkers", &(nw as i64))?;
    set_attr(&g, "ndim", &(dim as i64))?;
    set_attr(&g, "has_blobs", &(nb > 0))?;
    set_attr(&g, "iteration", &0i64)?;
    let cr = chunk_rows(nw, dim);
    g.new_dataset::<f64>().shape(vec![nw]).create("accepted")?.write_raw(&vec![0.0f64; nw])?;
    // Early allocation: the chunks of rows a run reserves ([`HdfSink::set_run_info`])
    // are placed when it starts, so checkpoints only write into them (see there).
    let early = Some(AllocTime::Early);
    g.new_dataset::<f64>().chunk((cr, nw, dim)).shape((0.., nw, dim)).alloc_time(early).create("chain")?;
    g.new_dataset::<f64>().chunk((cr, nw)).shape((0.., nw)).alloc_time(early).create("log_prob")?;
    if nb > 0 {
        let cb = (262_144 / (nw * nb * 8).max(1)).clamp(1, 4096);
        g.new_dataset::<f64>().chunk((cb, nw, nb)).shape((0.., nw, nb)).alloc_time(early).create("blobs")?;
    }
    Ok(g)
}

/// emcee's `accepted`: emcee computes the acceptance fraction as `accepted /
/// iteration` with `iteration` = stored rows, so for thinned chains the counts are
/// scaled by rows/steps (unchanged for thin = 1). Exact counts live in the
/// `climcal` group.
fn emcee_accepted(accepted: &[u64], rows: usize, steps: u64) -> Vec<f64> {
    let scale = if steps == 0 || rows as u64 == steps { 1.0 } else { rows as f64 / steps as f64 };
    accepted.iter().map(|&a| a as f64 * scale).collect()
}

/// Append rows `rows` of `chain` after `r0` stored rows.
fn append_rows(g: &Group, chain: &Chain, rows: Range<usize>, r0: usize) -> hdf5::Result<usize> {
    let n = rows.len();
    let (nw, dim, nb) = (chain.n_walkers(), chain.dim(), chain.n_blobs());
    let r1 = r0 + n;
    if n == 0 {
        return Ok(r0);
    }
    let ds = g.dataset("chain")?;
    grow_rows(&ds, r1)?;
    let v =
        ArrayView3::from_shape((n, nw, dim), &chain.samples_raw()[rows.start * nw * dim..rows.end * nw * dim]).expect("shape");
    ds.write_slice(v, s![r0..r1, .., ..])?;
    let ds = g.dataset("log_prob")?;
    grow_rows(&ds, r1)?;
    let v = ArrayView2::from_shape((n, nw), &chain.ln_probs_raw()[rows.start * nw..rows.end * nw]).expect("shape");
    ds.write_slice(v, s![r0..r1, ..])?;
    if nb > 0 {
        let ds = g.dataset("blobs")?;
        grow_rows(&ds, r1)?;
        let v = ArrayView3::from_shape((n, nw, nb), &chain.blobs_raw()[rows.start * nw * nb..rows.end * nw * nb]).expect("shape");
        ds.write_slice(v, s![r0..r1, .., ..])?;
    }
    Ok(r1)
}

/// Give a row-major dataset at least `rows` rows (its first axis only grows here).
fn grow_rows(ds: &Dataset, rows: usize) -> hdf5::Result<()> {
    let mut shape = ds.shape();
    if shape[0] < rows {
        shape[0] = rows;
        ds.resize(shape)?;
    }
    Ok(())
}

/// Set the first axis of `mcmc`'s row datasets to `rows`.
fn resize_rows(g: &Group, rows: usize) -> hdf5::Result<()> {
    for name in ["chain", "log_prob", "blobs"] {
        if let Ok(ds) = g.dataset(name) {
            let mut shape = ds.shape();
            if shape[0] != rows {
                shape[0] = rows;
                ds.resize(shape)?;
            }
        }
    }
    Ok(())
}

/// A committed sampler state in a file, with the run's metadata.
#[derive(Debug, Clone)]
pub struct ResumePoint {
    /// The state at the last commit.
    pub state: SamplerState,
    /// The file's metadata.
    pub meta: ChainMeta,
    /// Committed rows.
    pub rows: usize,
}

/// Checkpoint sink and storage for one chain file: every `append` opens the file,
/// commits (see [`crate::storage`] for the order) and closes it, so stock readers
/// (h5py, emcee) can read between checkpoints.
#[derive(Debug)]
pub struct HdfSink {
    path: PathBuf,
    n_walkers: usize,
    dim: usize,
    n_blobs: usize,
    rows: usize,
    serial: u64,
    started: Instant,
    wall_before: f64,
    ckpt_seconds: f64,
    n_ckpt: u64,
    /// The file length [`keep_margin`] last set (0: none yet).
    reserved: u64,
    rank_times: Option<RankTimesSource>,
}

impl HdfSink {
    /// Create `path` and commit `state` as its starting point (iteration
    /// `state.iteration`, no rows), so a run killed before its first checkpoint
    /// can still be resumed. `n_blobs` blob values are stored per walker and row
    /// (0 = none). An existing file is an error unless `overwrite`.
    pub fn create(path: &Path, meta: &ChainMeta, state: &SamplerState, n_blobs: usize, overwrite: bool) -> Result<Self> {
        if path.is_dir() {
            return Err(ferr(path, "is a directory; give a file name for the chain file"));
        }
        if path.exists() && !overwrite {
            return Err(ferr(
                path,
                "already exists; use --force to overwrite it, or `climcal resume` to continue the run it holds",
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(ferr(path, format!("directory {} does not exist", dir.display())));
            }
        }
        let (nw, dim) = (state.n_walkers, state.dim);
        // Build the file under a temporary name and move it into place once its
        // first commit is written: a file at `path` always holds a resumable state.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let mut sink = Self {
            path: tmp.clone(),
            n_walkers: nw,
            dim,
            n_blobs,
            rows: 0,
            serial: 0,
            started: Instant::now(),
            wall_before: 0.0,
            ckpt_seconds: 0.0,
            n_ckpt: 0,
            reserved: 0,
            rank_times: None,
        };
        let mut build = || -> Result<()> {
            let f = create_file(&tmp).map_err(h5(path, "cannot create"))?;
            let e = h5(path, "cannot write");
            let g = create_mcmc(&f, nw, dim, n_blobs).map_err(&e)?;
            // The rows of the whole run, placed before the file is visible (see
            // `set_run_info`, which grows them for a resume that adds steps).
            resize_rows(&g, (meta.n_steps_target / meta.thin.max(1) as u64) as usize).map_err(&e)?;
            let c = f.create_group("climcal").map_err(&e)?;
            write_meta(&c, meta).map_err(&e)?;
            create_rank_times(&c, meta.ranks).map_err(&e)?;
            f.flush().map_err(&e)?;
            drop((c, g));
            f.close().map_err(&e)?;
            // Both state slots, so that no checkpoint of the live file creates objects.
            sink.commit(None, state)?;
            sink.commit(None, state)?;
            std::fs::rename(&tmp, path).map_err(|err| ferr(path, format!("cannot move {} into place: {err}", tmp.display())))
        };
        if let Err(e) = build() {
            // Leave nothing behind: the file at `path` (if any) is untouched.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sink.path = path.to_path_buf();
        Ok(sink)
    }

    /// Open a chain file to continue it: drops rows past the last commit, restores
    /// `accepted` to the committed state and returns the state to continue from.
    pub fn open_resume(path: &Path) -> Result<(Self, ResumePoint)> {
        let f = open_retry(path, true)?;
        let point = read_point(&f, path)?;
        let e = h5(path, "cannot write");
        let g = f.group("mcmc").map_err(&e)?;
        let (nw, dim) = (point.state.n_walkers, point.state.dim);
        let n_blobs = g.dataset("blobs").map(|d| d.shape().get(2).copied().unwrap_or(0)).unwrap_or(0);
        let r = point.rows;
        let ds = g.dataset("chain").map_err(&e)?;
        if ds.shape()[0] != r {
            ds.resize((r, nw, dim)).map_err(&e)?;
            g.dataset("log_prob").map_err(&e)?.resize((r, nw)).map_err(&e)?;
            if n_blobs > 0 {
                g.dataset("blobs").map_err(&e)?.resize((r, nw, n_blobs)).map_err(&e)?;
            }
        }
        let acc = emcee_accepted(&point.state.accepted, r, point.state.iteration);
        g.dataset("accepted").map_err(&e)?.write_raw(&acc).map_err(&e)?;
        f.flush().map_err(&e)?;
        let serial = {
            let c = f.group("climcal").map_err(&e)?;
            (0..2)
                .filter_map(|i| c.group(&format!("state{i}")).ok())
                .filter_map(|s| get_attr::<u64>(&s, "serial").ok())
                .max()
                .unwrap_or(0)
        };
        drop(g);
        f.close().map_err(&e)?;
        let sink = Self {
            path: path.to_path_buf(),
            n_walkers: nw,
            dim,
            n_blobs,
            rows: r,
            serial,
            started: Instant::now(),
            wall_before: point.meta.wall_seconds,
            ckpt_seconds: point.meta.checkpoint_seconds,
            n_ckpt: point.meta.n_checkpoints,
            reserved: 0,
            rank_times: None,
        };
        Ok((sink, point))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Blob values stored per walker and row.
    pub fn n_blobs(&self) -> usize {
        self.n_blobs
    }
    /// Committed rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Seconds spent in checkpoints by this sink (and the runs before it).
    pub fn checkpoint_seconds(&self) -> f64 {
        self.ckpt_seconds
    }

    /// Record the executor layout and the total steps asked for.
    pub fn set_run_info(&self, ranks: usize, threads: usize, n_steps_target: u64) -> Result<()> {
        let f = open_retry(&self.path, true)?;
        let e = h5(&self.path, "cannot write");
        let c = f.group("climcal").map_err(&e)?;
        set_attr(&c, "ranks", &(ranks as i64)).map_err(&e)?;
        set_attr(&c, "threads", &(threads as i64)).map_err(&e)?;
        set_attr(&c, "n_steps_target", &n_steps_target).map_err(&e)?;
        // Files written before per-rank times were stored get the dataset here,
        // and a resume on another layout its rows, before the run's first
        // checkpoint (so that checkpoints of a live file never create objects).
        create_rank_times(&c, ranks).map_err(&e)?;
        resize_rank_times(&c, ranks).map_err(&e)?;
        f.flush().map_err(&e)?;
        // The rows the run will commit, placed now (the datasets allocate their
        // chunks early): checkpoints then write rows into space the file already
        // has, so HDF5's allocated end does not move while the run goes on. A reader
        // holding the superblock of one moment while the writer placed new chunks
        // and rewrote the chunk index of the next found rows past its end of file
        // ("addr overflow", 1 in ~18 000 reads polling every 2 ms), and one that
        // checked the file's length just before the end moved, a "truncated file".
        // emcee's backend likewise grows its datasets by the steps of a run before
        // sampling; readers take `iteration` rows, the rest are zeros.
        let thin = get_attr::<i64>(&c, "thin").unwrap_or(1).max(1) as u64;
        let rows = (n_steps_target / thin) as usize;
        let g = f.group("mcmc").map_err(&e)?;
        if g.dataset("chain").map(|d| d.shape()[0] < rows).unwrap_or(false) {
            let (nw, dim, nb) = (self.n_walkers as u64, self.dim as u64, self.n_blobs as u64);
            let bytes = 8 * rows as u64 * nw * (dim + 1 + nb) + (4 << 20);
            let mut reserved = 0;
            keep_margin(&self.path, bytes, &mut reserved)
                .map_err(|err| ferr(&self.path, format!("cannot reserve rows: {err}")))?;
            resize_rows(&g, rows).map_err(&e)?;
            f.flush().map_err(&e)?;
        }
        drop((c, g));
        f.close().map_err(&e)
    }

    /// Store the figures `source` returns (per MPI rank: evaluations, failures,
    /// evaluating / communicating / waiting seconds of this run so far) at every
    /// checkpoint, in `climcal/rank_times` and rank 0's in the attrs
    /// `eval_seconds`, `comm_seconds`, `wait_seconds`.
    pub fn record_rank_times(&mut self, source: RankTimesSource) {
        self.rank_times = Some(source);
    }

    fn commit(&mut self, rows: Option<(&Chain, Range<usize>)>, state: &SamplerState) -> Result<()> {
        let t0 = Instant::now();
        if state.n_walkers != self.n_walkers || state.dim != self.dim {
            return Err(ferr(
                &self.path,
                format!(
                    "holds {} walkers × {} parameters, cannot append a state of {} × {}",
                    self.n_walkers, self.dim, state.n_walkers, state.dim
                ),
            ));
        }
        if let Some((chain, _)) = &rows {
            if chain.n_blobs() != self.n_blobs {
                return Err(ferr(
                    &self.path,
                    format!("holds {} blob values per sample, the chain has {}", self.n_blobs, chain.n_blobs()),
                ));
            }
        }
        let path = self.path.clone();
        let e = h5(&path, "cannot write checkpoint");
        // The bytes this checkpoint may add: its rows, a state slot, and room for
        // new chunks and metadata.
        let new_rows = rows.as_ref().map_or(0, |(_, r)| r.len()) as u64;
        let (nw, dim, nb) = (self.n_walkers as u64, self.dim as u64, self.n_blobs as u64);
        let extra = 8 * (new_rows * nw * (dim + 1 + nb) + nw * (2 * dim + 2 * nb + 8)) + (4 << 20);
        let mut reserved = self.reserved;
        let mut reserve =
            || keep_margin(&path, extra, &mut reserved).map_err(|err| ferr(&path, format!("cannot write checkpoint: {err}")));
        reserve()?;
        let f = open_retry(&path, true)?;
        let g = f.group("mcmc").map_err(&e)?;
        let c = f.group("climcal").map_err(&e)?;
        // Writers take no HDF5 lock: a second process writing this file shows up
        // as a commit this sink did not make.
        let last = (0..2)
            .filter_map(|i| c.group(&format!("state{i}")).ok())
            .filter_map(|s| get_attr::<u64>(&s, "serial").ok())
            .max()
            .unwrap_or(0);
        if last != self.serial {
            return Err(ferr(
                &path,
                format!(
                    "was checkpointed by another process since this run's last checkpoint (commit {last}, expected {}); two runs are writing the same file — stop one of them",
                    self.serial
                ),
            ));
        }
        let serial = self.serial + 1;
        let slot_name = format!("state{}", serial % 2);
        let slot = match c.group(&slot_name) {
            Ok(s) => s,
            Err(_) => c.create_group(&slot_name).map_err(&e)?,
        };
        // 1. Invalidate the slot being overwritten and append the rows.
        set_attr(&slot, "valid", &0u8).map_err(&e)?;
        let r1 = match rows {
            Some((chain, range)) => append_rows(&g, chain, range, self.rows).map_err(&e)?,
            None => self.rows,
        };
        f.flush().map_err(&e)?;
        reserve()?;
        // 2. The state.
        let (nw, dim) = (self.n_walkers, self.dim);
        put(&slot, "positions", &[nw, dim], &state.positions).map_err(&e)?;
        put(&slot, "ln_probs", &[nw], &state.ln_probs).map_err(&e)?;
        let nbe = state.blobs.len() / nw.max(1);
        if nbe > 0 {
            put(&slot, "blobs", &[nw, nbe], &state.blobs).map_err(&e)?;
        }
        let words: Vec<u64> = state.rngs.iter().flat_map(rng_to_words).collect();
        put(&slot, "rngs", &[nw, 4], &words).map_err(&e)?;
        put(&slot, "accepted", &[nw], &state.accepted).map_err(&e)?;
        set_attr(&slot, "iteration", &state.iteration).map_err(&e)?;
        set_attr(&slot, "rows", &(r1 as u64)).map_err(&e)?;
        set_attr(&slot, "failures", &state.failures).map_err(&e)?;
        set_attr(&slot, "serial", &serial).map_err(&e)?;
        set_text_bytes_attr(&slot, "move_state", &state.moves.to_json()).map_err(&e)?;
        f.flush().map_err(&e)?;
        reserve()?;
        // 3. Mark it valid.
        set_attr(&slot, "valid", &1u8).map_err(&e)?;
        f.flush().map_err(&e)?;
        reserve()?;
        // 4. emcee's view: accepted, then the commit point `iteration`.
        let acc = emcee_accepted(&state.accepted, r1, state.iteration);
        g.dataset("accepted").map_err(&e)?.write_raw(&acc).map_err(&e)?;
        self.n_ckpt += 1;
        self.ckpt_seconds += t0.elapsed().as_secs_f64();
        set_attr(&c, "wall_seconds", &(self.wall_before + self.started.elapsed().as_secs_f64())).map_err(&e)?;
        set_attr(&c, "checkpoint_seconds", &self.ckpt_seconds).map_err(&e)?;
        set_attr(&c, "n_checkpoints", &self.n_ckpt).map_err(&e)?;
        if let Some(src) = &self.rank_times {
            if c.link_exists("rank_times") {
                write_rank_times(&c, &(src.0)()).map_err(&e)?;
            }
        }
        set_attr(&g, "iteration", &(r1 as i64)).map_err(&e)?;
        f.flush().map_err(&e)?;
        reserve()?;
        drop((slot, g, c));
        f.close().map_err(&e)?;
        // The margin stays while the run goes on (the sink trims it when dropped).
        reserve()?;
        self.reserved = reserved;
        self.rows = r1;
        self.serial = serial;
        Ok(())
    }
}

impl Drop for HdfSink {
    /// Trim the margin kept for live readers once no more checkpoints come (a run
    /// killed with -9 leaves it: zero bytes past HDF5's allocated end, which every
    /// reader ignores, and the resumed run's sink trims them at its end).
    fn drop(&mut self) {
        let _ = trim_margin(&self.path, self.rows);
    }
}

impl ChainStorage for HdfSink {
    /// Write `chain` to this sink's path as a new file (no sampler state).
    fn save(&mut self, chain: &Chain) -> Result<()> {
        write_chain(&self.path, chain, None)
    }
    fn load(&self) -> Result<Chain> {
        read_chain(&self.path).map(|(c, _)| c)
    }
    fn append(&mut self, chain: &Chain, rows: Range<usize>, state: &SamplerState) -> Result<()> {
        self.commit(Some((chain, rows)), state)
    }
}

/// The newest valid state slot whose `rows` equals the committed `iteration`.
fn best_slot(c: &Group, rows: usize) -> Option<Group> {
    (0..2)
        .filter_map(|i| c.group(&format!("state{i}")).ok())
        .filter(|s| get_attr::<u8>(s, "valid").unwrap_or(0) == 1)
        .filter(|s| get_attr::<u64>(s, "rows").ok() == Some(rows as u64))
        .max_by_key(|s| get_attr::<u64>(s, "serial").unwrap_or(0))
}

fn read_point(f: &File, path: &Path) -> Result<ResumePoint> {
    let g = f.group("mcmc").map_err(|_| ferr(path, "has no 'mcmc' group: not a climcal or emcee chain file"))?;
    let c = f.group("climcal").map_err(|_| {
        ferr(path, "has no 'climcal' group (an emcee file or a saved chain): it holds no sampler state to resume from")
    })?;
    let meta = read_meta(&c);
    let rows = committed_rows(&g, path)?;
    let slot = best_slot(&c, rows).ok_or_else(|| {
        ferr(path, format!("has no complete sampler state for its {rows} committed rows (corrupt, or written by Chain::save); it cannot be resumed"))
    })?;
    let e = h5(path, "corrupt sampler state");
    let nw = count_attr(&g, "nwalkers", path)?;
    let dim = count_attr(&g, "ndim", path)?;
    let positions = slot.dataset("positions").and_then(|d| d.read_raw::<f64>()).map_err(&e)?;
    let ln_probs = slot.dataset("ln_probs").and_then(|d| d.read_raw::<f64>()).map_err(&e)?;
    let blobs = slot.dataset("blobs").and_then(|d| d.read_raw::<f64>()).unwrap_or_default();
    let words = slot.dataset("rngs").and_then(|d| d.read_raw::<u64>()).map_err(&e)?;
    let accepted = slot.dataset("accepted").and_then(|d| d.read_raw::<u64>()).map_err(&e)?;
    if positions.len() != nw * dim || ln_probs.len() != nw || words.len() != nw * 4 || accepted.len() != nw {
        return Err(ferr(path, "sampler state has the wrong shape (corrupt file)"));
    }
    check_writable_layout(&g, &c, path, rows, nw, dim, blobs.len() / nw.max(1))?;
    let rngs = words.chunks_exact(4).map(|w| rng_from_words([w[0], w[1], w[2], w[3]])).collect();
    let state = SamplerState {
        positions,
        ln_probs,
        blobs,
        rngs,
        iteration: get_attr::<u64>(&slot, "iteration").map_err(&e)?,
        accepted,
        failures: get_attr::<u64>(&slot, "failures").map_err(&e)?,
        n_walkers: nw,
        dim,
        // Files from before moves were stored hold the stretch move's (empty) state.
        moves: match get_text_bytes_attr(&slot, "move_state").map_err(|err| ferr(path, err))? {
            t if t.is_empty() => MoveState::default(),
            t => MoveState::from_json(&t).map_err(|err| ferr(path, err.to_string()))?,
        },
    };
    Ok(ResumePoint { state, meta, rows })
}

/// `mcmc.iteration`, the committed rows: an error naming the file when it is
/// missing, not an integer, or negative.
fn committed_rows(g: &Group, path: &Path) -> Result<usize> {
    let it = get_attr::<i64>(g, "iteration").map_err(h5(path, "mcmc attribute 'iteration' (the committed rows)"))?;
    usize::try_from(it)
        .map_err(|_| ferr(path, format!("mcmc attribute 'iteration' is {it}, a negative row count: the file is corrupt")))
}

/// A positive count attribute of `mcmc` (`nwalkers`, `ndim`).
fn count_attr(g: &Group, name: &str, path: &Path) -> Result<usize> {
    let v = get_attr::<i64>(g, name).map_err(h5(path, &format!("mcmc attribute '{name}'")))?;
    match usize::try_from(v) {
        Ok(n) if n > 0 && n <= u32::MAX as usize => Ok(n),
        _ => Err(ferr(path, format!("mcmc attribute '{name}' is {v}: the file is corrupt"))),
    }
}

/// Before a resume changes anything: every dataset and attribute a checkpoint
/// will write exists with the type and shape the append needs (datasets that grow
/// must be chunked with an unlimited first axis), so a damaged file is refused
/// untouched instead of failing at the first checkpoint.
#[allow(clippy::too_many_arguments)]
fn check_writable_layout(g: &Group, c: &Group, path: &Path, rows: usize, nw: usize, dim: usize, nb_state: usize) -> Result<()> {
    let bad = |what: &str, why: String| ferr(path, format!("{what} {why}; the file is damaged and cannot be resumed"));
    let dataset = |name: &str, tail: &[usize], grows: bool| -> Result<()> {
        let what = format!("mcmc/{name}");
        let ds = g.dataset(name).map_err(|_| bad(&what, "is missing".into()))?;
        if !ds.dtype().map(|t| t.is::<f64>()).unwrap_or(false) {
            return Err(bad(&what, "is not float64".into()));
        }
        let shape = ds.shape();
        if grows {
            let ok = shape.len() == tail.len() + 1 && shape[1..] == *tail && shape[0] >= rows;
            if !ok {
                return Err(bad(&what, format!("has shape {shape:?}, expected ({rows} or more, {})", join(tail))));
            }
            let unlimited = ds.space().map(|s| s.maxdims().first().copied().flatten().is_none()).unwrap_or(false);
            if !ds.is_chunked() || !unlimited {
                return Err(bad(&what, "cannot grow (not chunked with an unlimited first axis)".into()));
            }
        } else if shape != tail {
            return Err(bad(&what, format!("has shape {shape:?}, expected ({})", join(tail))));
        }
        Ok(())
    };
    dataset("chain", &[nw, dim], true)?;
    dataset("log_prob", &[nw], true)?;
    dataset("accepted", &[nw], false)?;
    let has_blobs = g
        .attr("has_blobs")
        .and_then(|a| a.read_scalar::<bool>())
        .map_err(|_| bad("mcmc attribute 'has_blobs'", "is missing or not a boolean".into()))?;
    match g.dataset("blobs") {
        Ok(d) => {
            let nb = d.shape().get(2).copied().unwrap_or(0);
            dataset("blobs", &[nw, nb], true)?;
            if nb_state != 0 && nb_state != nb {
                return Err(bad("mcmc/blobs", format!("has {nb} values per walker but the sampler state {nb_state}")));
            }
        }
        Err(_) if has_blobs => return Err(bad("mcmc/blobs", "is missing but mcmc attribute 'has_blobs' is true".into())),
        Err(_) => {}
    }
    // Attributes a checkpoint overwrites: present ones must read as their type.
    let numeric = |loc: &Group, group: &str, name: &str, float: bool| -> Result<()> {
        if loc.attr(name).is_err() {
            return Ok(());
        }
        let ok = if float { get_attr::<f64>(loc, name).is_ok() } else { get_attr::<i64>(loc, name).is_ok() };
        if !ok {
            return Err(bad(&format!("{group} attribute '{name}'"), "is not a number".into()));
        }
        Ok(())
    };
    for (name, float) in [
        ("wall_seconds", true),
        ("checkpoint_seconds", true),
        ("n_checkpoints", false),
        ("ranks", false),
        ("threads", false),
        ("n_steps_target", false),
    ] {
        numeric(c, "climcal", name, float)?;
    }
    for name in ["nwalkers", "ndim"] {
        numeric(g, "mcmc", name, false)?;
    }
    Ok(())
}

fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// Read the committed sampler state and metadata of a climcal chain file (without
/// changing it).
pub fn read_resume(path: &Path) -> Result<ResumePoint> {
    let f = open_retry(path, false)?;
    read_point(&f, path)
}

/// Read the committed rows of a chain file (climcal's or emcee's) and, for
/// climcal files, the metadata.
pub fn read_chain(path: &Path) -> Result<(Chain, Option<ChainMeta>)> {
    let f = open_retry(path, false)?;
    let g = f.group("mcmc").map_err(|_| ferr(path, "has no 'mcmc' group: not a climcal or emcee chain file"))?;
    let e = h5(path, "corrupt or truncated");
    let nw = count_attr(&g, "nwalkers", path)?;
    let dim = count_attr(&g, "ndim", path)?;
    let rows = committed_rows(&g, path)?;
    let ds = g.dataset("chain").map_err(&e)?;
    let shape = ds.shape();
    if shape.len() != 3 || shape[1] != nw || shape[2] != dim || shape[0] < rows {
        return Err(ferr(
            path,
            format!("mcmc/chain has shape {shape:?}, expected ({rows} or more, {nw}, {dim}): the file is corrupt or truncated"),
        ));
    }
    let samples = ds.read_slice::<f64, _, Ix3>(s![0..rows, .., ..]).map_err(&e)?.into_raw_vec_and_offset().0;
    let ln_probs =
        g.dataset("log_prob").and_then(|d| d.read_slice::<f64, _, Ix2>(s![0..rows, ..])).map_err(&e)?.into_raw_vec_and_offset().0;
    // Blobs: our float (rows, nw, nb) layout; emcee's compound/object blobs are skipped.
    let (blobs, nb) = match g.dataset("blobs") {
        Ok(d) if d.ndim() == 3 && d.dtype().map(|t| t.is::<f64>()).unwrap_or(false) && d.shape()[0] >= rows => {
            let nb = d.shape()[2];
            (d.read_slice::<f64, _, Ix3>(s![0..rows, .., ..]).map_err(&e)?.into_raw_vec_and_offset().0, nb)
        }
        _ => (Vec::new(), 0),
    };
    let accepted_f: Vec<f64> = g.dataset("accepted").and_then(|d| d.read_raw::<f64>()).map_err(&e)?;
    let mut accepted: Vec<u64> = accepted_f.iter().map(|a| a.round().max(0.0) as u64).collect();
    if let Ok(a) = f.dataset("climcal/accepted").and_then(|d| d.read_raw::<u64>()) {
        accepted = a; // exact counts of a saved chain
    }
    let (names, thin, n_steps, failures, meta) = match f.group("climcal") {
        Ok(c) => {
            let meta = read_meta(&c);
            let (n_steps, failures) = match best_slot(&c, rows) {
                Some(s) => {
                    if let Ok(a) = s.dataset("accepted").and_then(|d| d.read_raw::<u64>()) {
                        if a.len() == nw {
                            accepted = a;
                        }
                    }
                    (get_attr::<u64>(&s, "iteration").unwrap_or(0), get_attr::<u64>(&s, "failures").unwrap_or(0))
                }
                None => (
                    get_attr::<u64>(&c, "n_steps").unwrap_or((rows * meta.thin) as u64),
                    get_attr::<u64>(&c, "failures").unwrap_or(0),
                ),
            };
            let names = if meta.names.len() == dim { meta.names.clone() } else { default_names(dim) };
            (names, meta.thin, n_steps, failures, Some(meta))
        }
        Err(_) => (default_names(dim), 1, rows as u64, 0, None),
    };
    if accepted.len() != nw {
        return Err(ferr(path, format!("mcmc/accepted has {} values for {nw} walkers", accepted.len())));
    }
    let chain = Chain::from_parts(names, nw, dim, samples, ln_probs, blobs, nb, n_steps, accepted, thin, failures)?;
    Ok((chain, meta))
}

fn default_names(dim: usize) -> Vec<String> {
    (0..dim).map(|i| format!("p{i}")).collect()
}

/// Write a whole chain to a new file at `path` (replacing any file there), with
/// `meta` or minimal metadata. The file holds no sampler state.
pub fn write_chain(path: &Path, chain: &Chain, meta: Option<&ChainMeta>) -> Result<()> {
    let e = h5(path, "cannot write");
    let (nw, dim, nb) = (chain.n_walkers(), chain.dim(), chain.n_blobs());
    let f = create_file(path).map_err(h5(path, "cannot create"))?;
    let g = create_mcmc(&f, nw, dim, nb).map_err(&e)?;
    let r = append_rows(&g, chain, 0..chain.n_rows(), 0).map_err(&e)?;
    let acc = emcee_accepted(chain.accepted(), r, chain.n_steps());
    g.dataset("accepted").map_err(&e)?.write_raw(&acc).map_err(&e)?;
    let c = f.create_group("climcal").map_err(&e)?;
    put(&c, "accepted", &[nw], chain.accepted()).map_err(&e)?;
    let mut m = meta.cloned().unwrap_or_else(|| ChainMeta {
        names: chain.names().to_vec(),
        units: vec![String::new(); dim],
        priors: vec![String::new(); dim],
        transforms: vec!["identity".into(); dim],
        ranks: 1,
        threads: 1,
        ..Default::default()
    });
    m.thin = chain.thin();
    write_meta(&c, &m).map_err(&e)?;
    set_attr(&c, "n_steps", &chain.n_steps()).map_err(&e)?;
    set_attr(&c, "failures", &chain.failures()).map_err(&e)?;
    set_attr(&g, "iteration", &(r as i64)).map_err(&e)?;
    f.flush().map_err(&e)?;
    drop((g, c));
    f.close().map_err(&e)
}

/// The `climcal/rank_times` dataset (one row per rank, zeros until a run reports)
/// and the rank-0 time attributes, unless the file has them. Its chunk holds at
/// least 64 ranks and is allocated at creation, so that checkpoints write into
/// space the file already has (no chunk is placed while readers may be reading).
fn create_rank_times(c: &Group, ranks: usize) -> hdf5::Result<()> {
    if !c.link_exists("rank_times") {
        let w = RANK_TIME_COLUMNS.len();
        let ds = c
            .new_dataset::<f64>()
            .chunk((ranks.max(64), w))
            .shape((ranks.max(1).., w))
            .alloc_time(Some(AllocTime::Early))
            .create("rank_times")?;
        ds.write_raw(&vec![0.0f64; ranks.max(1) * w])?;
        set_str_attr(&ds, "columns", &RANK_TIME_COLUMNS.join(","))?;
    }
    for k in ["eval_seconds", "comm_seconds", "wait_seconds"] {
        if c.attr(k).is_err() {
            set_attr(c, k, &0.0f64)?;
        }
    }
    Ok(())
}

/// Give `climcal/rank_times` one row per rank (before a run: a resume on another
/// layout).
fn resize_rank_times(c: &Group, ranks: usize) -> hdf5::Result<()> {
    let ds = c.dataset("rank_times")?;
    if ds.shape().first() != Some(&ranks.max(1)) {
        ds.resize((ranks.max(1), RANK_TIME_COLUMNS.len()))?;
        ds.write_raw(&vec![0.0f64; ranks.max(1) * RANK_TIME_COLUMNS.len()])?;
    }
    Ok(())
}

/// Write one row per rank into `climcal/rank_times` (resized to the rank count)
/// and rank 0's split into the group's time attributes.
fn write_rank_times(c: &Group, ranks: &[RankStats]) -> hdf5::Result<()> {
    let n = ranks.len();
    let w = RANK_TIME_COLUMNS.len();
    let flat: Vec<f64> = ranks
        .iter()
        .flat_map(|r| [r.evaluations as f64, r.failures as f64, r.eval_seconds, r.comm_seconds, r.wait_seconds])
        .collect();
    let ds = c.dataset("rank_times")?;
    if ds.shape().first() != Some(&n) {
        ds.resize((n, w))?; // only when the layout was not announced (set_run_info)
    }
    if n > 0 {
        ds.write_slice(ArrayView2::from_shape((n, w), &flat).expect("shape"), s![0..n, ..])?;
    }
    if let Some(r0) = ranks.first() {
        set_attr(c, "eval_seconds", &r0.eval_seconds)?;
        set_attr(c, "comm_seconds", &r0.comm_seconds)?;
        set_attr(c, "wait_seconds", &r0.wait_seconds)?;
    }
    Ok(())
}

/// The per-rank figures stored in `climcal/rank_times` (see
/// [`HdfSink::record_rank_times`]), rank 0 first; `None` when the file has none
/// (a run without MPI, or a file from before they were stored).
pub fn read_rank_times(path: &Path) -> Option<Vec<RankStats>> {
    let f = File::open(path).ok()?;
    let ds = f.group("climcal").ok()?.dataset("rank_times").ok()?;
    let shape = ds.shape();
    if shape.len() != 2 || shape[0] == 0 || shape[1] != RANK_TIME_COLUMNS.len() {
        return None;
    }
    let v = ds.read_raw::<f64>().ok()?;
    if v.iter().all(|&x| x == 0.0) {
        return None; // a run without MPI: nothing was reported
    }
    let rows = v
        .chunks_exact(RANK_TIME_COLUMNS.len())
        .map(|r| RankStats {
            evaluations: r[0] as u64,
            failures: r[1] as u64,
            eval_seconds: r[2],
            comm_seconds: r[3],
            wait_seconds: r[4],
        })
        .collect();
    Some(rows)
}

/// Record how the last run's evaluation time split (attrs `eval_seconds`,
/// `comm_seconds`, `wait_seconds` of group `climcal`; see
/// [`crate::executor::EvalStats`]), for `climcal info`. Added for MPI runs.
pub fn set_eval_times(path: &Path, stats: &crate::executor::EvalStats) -> Result<()> {
    let f = open_retry(path, true)?;
    let e = h5(path, "cannot write");
    let c = f.group("climcal").map_err(&e)?;
    set_attr(&c, "eval_seconds", &stats.eval_seconds).map_err(&e)?;
    set_attr(&c, "comm_seconds", &stats.comm_seconds).map_err(&e)?;
    set_attr(&c, "wait_seconds", &stats.wait_seconds).map_err(&e)?;
    f.flush().map_err(&e)?;
    drop(c);
    f.close().map_err(&e)
}

/// The times [`set_eval_times`] recorded, `[eval, comm, wait]` seconds, if any.
pub fn read_eval_times(path: &Path) -> Option<[f64; 3]> {
    let f = File::open(path).ok()?;
    let c = f.group("climcal").ok()?;
    let g = |k: &str| get_attr::<f64>(&c, k).ok();
    let t = [g("eval_seconds")?, g("comm_seconds")?, g("wait_seconds")?];
    // New files carry the attributes from the start, zero until an MPI run fills them.
    t.iter().any(|&v| v != 0.0).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::is_lock_message;

    #[test]
    fn only_real_lock_conflicts_count_as_locks() {
        // As HDF5 1.10 reports a file locked by another process, and as it reports
        // corrupt files (which once matched "lock" inside "superblock").
        assert!(is_lock_message(
            "H5Fopen(): unable to open file: unable to lock file, errno = 11, error message = 'Resource temporarily unavailable'"
        ));
        for corrupt in [
            "H5Fopen(): unable to open file: unable to read superblock",
            "unable to open file: truncated file: eof = 16472, sblock->base_addr = 0, stored_eof = 419288",
            "file signature not found",
            "H5Oopen(): unable to open object: bad object header version number",
        ] {
            assert!(!is_lock_message(corrupt), "{corrupt}");
        }
    }
}
