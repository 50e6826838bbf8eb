//! Ensemble files (feature `hdf5`): per-member results streamed as batches finish,
//! and the constrained ensemble as a chain-file-like view.
//!
//! Layout (group `ensemble`):
//!
//! - attrs `format_version`, `crate_version`, `n_members`, `committed` (members
//!   stored: the commit point), `failures`, `seed`, `sampling`, `batch`, `model`,
//!   `config_toml`, `config_dir`, `fingerprint` — nothing that depends on the run
//!   (wall time, ranks, threads, host go to the CLI's log and its sidecar
//!   `FILE.log`), so that the file itself is byte-identical whatever the layout;
//! - string datasets `param_names`, `units`, `priors` (JSON), `variables` (target
//!   variables), `output_names`, `output_units`;
//! - `parameters (N, n_params)`, `loglike (N)` (total), `loglike_by_variable (N,
//!   n_variables)`, `rmse (N, n_variables)`, `outputs (N, n_outputs)` and
//!   `derived (N, n_derived)` (the model's derived quantities, names in
//!   `derived_names`, `derived_units`, `derived_descriptions`) when any:
//!   fixed-size chunked datasets with fill value NaN, allocated in full when the
//!   file is created, so rows past `committed` read as NaN and a commit only
//!   writes raw data and overwrites two attributes in place (no allocation, no
//!   metadata that depends on how many sessions wrote the file); failed members
//!   have `loglike = -inf`.
//! - after the constraint stage, group `ensemble/constraints`: attrs `method`,
//!   `n_passed`, `ess`, `ess_fair`, `draw_members`, `draw_replace`, `draw_seed`;
//!   datasets `passed (N, u8)`, `weights (N)`, `drawn (M, u64)` (member indices)
//!   and one group per target (`targets/NAME`: `edges`, `probabilities`, attr
//!   `dist` JSON); and the drawn members as a one-step chain: group `mcmc` with
//!   `nwalkers = M`, `iteration = 1`, `chain (1, M, n_params)`, `log_prob (1, M)`
//!   (total log-likelihood) and `blobs (1, M, n_quantities)` with their names in
//!   `climcal/derived_names` (`derived_units`, `derived_descriptions`: the
//!   per-sample scalars of chain files), so `climcal info`, `climcal.load` and emcee's
//!   `HDFBackend` read the constrained ensemble as they read a chain.
//!
//! A batch is committed by writing its rows, flushing, then raising `committed`
//! and flushing (the file is opened and closed around each commit, as chain
//! files are). A run killed at any moment leaves rows up to `committed` intact;
//! a resume rewrites members from `committed` on, which are pure functions of the
//! seed and their index, so the resumed file holds the same data.
//!
//! **Byte-identical files.** No object carries a time stamp (`obj_track_times`
//! off for the file's root, every group and dataset), every member dataset is
//! allocated at creation, and the constraint stage writes the whole final file
//! afresh (`FILE.constraining`: the header, the members copied in order, then the
//! constraint results, moved over `FILE` when complete), so the final file depends
//! only on the header, the member data and the constraint plan: not on ranks,
//! threads, batch sizes, kills and resumes, or on constraints applied before.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hdf5::plist::dataset_create::AllocTime;
use hdf5::{File, Group};
use ndarray_h5::{s, ArrayView1, ArrayView2, ArrayView3, Ix1, Ix2};

use crate::ensemble::{ColumnSource, Constrained, MemberSink, Plan, Weighting};
use crate::error::{Error, Result};

use super::hdf::{ferr, get_attr, get_str_attr, h5, read_strings, set_attr, set_str_attr, write_strings};

/// Version of the `ensemble` group layout.
pub const ENSEMBLE_FORMAT_VERSION: u32 = 1;

/// What an ensemble file records about its members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnsembleHeader {
    pub n_members: u64,
    pub names: Vec<String>,
    pub units: Vec<String>,
    /// Priors as JSON ([`crate::distribution::PriorSpec`]).
    pub priors: Vec<String>,
    /// Target variables (columns of `loglike_by_variable` and `rmse`).
    pub variables: Vec<String>,
    pub output_names: Vec<String>,
    pub output_units: Vec<String>,
    /// The model's derived quantities (columns of `derived`), units, descriptions.
    pub derived_names: Vec<String>,
    pub derived_units: Vec<String>,
    pub derived_descriptions: Vec<String>,
    pub sampling: String,
    pub seed: u64,
    pub batch: u64,
    pub model: String,
    pub config_toml: String,
    pub config_dir: String,
    pub fingerprint: String,
}

/// Open, retrying briefly while a reader holds the lock.
fn open_retry(path: &Path, write: bool) -> Result<File> {
    let t0 = Instant::now();
    loop {
        let r = if write { File::open_rw(path) } else { File::open(path) };
        match r {
            Ok(f) => return Ok(f),
            Err(e) if super::hdf::is_lock_message(&e.to_string()) && t0.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => {
                if !path.exists() {
                    return Err(ferr(path, "does not exist"));
                }
                return Err(ferr(path, format!("cannot open it as HDF5 (corrupt, truncated or locked): {e}")));
            }
        }
    }
}

/// Rows per chunk: one batch (so that a commit writes whole chunks and never
/// reads a chunk back to complete it), at most 4 MiB of `cols` f64 columns and at
/// most the whole dataset.
fn chunk_rows(n: u64, cols: usize, batch: u64) -> usize {
    let cap = (4 * 1024 * 1024 / (8 * cols.max(1))).max(1) as u64;
    batch.clamp(1, cap).min(n.max(1)) as usize
}

/// A new file whose root group carries no time stamps.
fn new_file(path: &Path) -> hdf5::Result<File> {
    File::with_options().with_fcpl(|p| p.obj_track_times(false)).create(path)
}

/// A new group without time stamps.
fn new_group(parent: &Group, name: &str) -> hdf5::Result<Group> {
    parent.create_group_builder().obj_track_times(false).create(name)
}

/// A member dataset `(n, cols)` (or `(n)` when `cols` is `None`): chunked by
/// batch, fill value NaN, every chunk allocated (and filled) now, so that later
/// writes change raw data only.
fn new_members(g: &Group, name: &str, n: u64, cols: Option<usize>, batch: u64) -> hdf5::Result<()> {
    let b = g.new_dataset::<f64>().fill_value(f64::NAN).obj_track_times(false).alloc_time(Some(AllocTime::Early));
    match cols {
        Some(c) => b.chunk((chunk_rows(n, c, batch), c.max(1))).shape((n as usize, c)).create(name)?,
        None => b.chunk(chunk_rows(n, 1, batch)).shape(n as usize).create(name)?,
    };
    Ok(())
}

/// The member datasets of a header: name and columns (`None`: one-dimensional).
fn member_datasets(h: &EnsembleHeader) -> Vec<(&'static str, Option<usize>)> {
    let mut v = vec![
        ("parameters", Some(h.names.len())),
        ("loglike", None),
        ("loglike_by_variable", Some(h.variables.len())),
        ("rmse", Some(h.variables.len())),
    ];
    if !h.output_names.is_empty() {
        v.push(("outputs", Some(h.output_names.len())));
    }
    if !h.derived_names.is_empty() {
        v.push(("derived", Some(h.derived_names.len())));
    }
    v
}

/// Write the `ensemble` group of a new file: attributes, names, and the member
/// datasets (all NaN), with no members committed.
fn write_header(f: &File, h: &EnsembleHeader) -> hdf5::Result<()> {
    let g = new_group(f, "ensemble")?;
    set_attr(&g, "format_version", &(ENSEMBLE_FORMAT_VERSION as i64))?;
    set_str_attr(&g, "crate_version", env!("CARGO_PKG_VERSION"))?;
    set_attr(&g, "n_members", &h.n_members)?;
    set_attr(&g, "committed", &0u64)?;
    set_attr(&g, "failures", &0u64)?;
    set_attr(&g, "seed", &h.seed)?;
    set_attr(&g, "batch", &h.batch)?;
    set_str_attr(&g, "sampling", &h.sampling)?;
    set_str_attr(&g, "model", &h.model)?;
    set_str_attr(&g, "config_toml", &h.config_toml)?;
    set_str_attr(&g, "config_dir", &h.config_dir)?;
    set_str_attr(&g, "fingerprint", &h.fingerprint)?;
    write_strings(&g, "param_names", &h.names)?;
    write_strings(&g, "units", &h.units)?;
    write_strings(&g, "priors", &h.priors)?;
    write_strings(&g, "variables", &h.variables)?;
    write_strings(&g, "output_names", &h.output_names)?;
    write_strings(&g, "output_units", &h.output_units)?;
    write_strings(&g, "derived_names", &h.derived_names)?;
    write_strings(&g, "derived_units", &h.derived_units)?;
    write_strings(&g, "derived_descriptions", &h.derived_descriptions)?;
    for (name, cols) in member_datasets(h) {
        new_members(&g, name, h.n_members, cols, h.batch)?;
    }
    Ok(())
}

/// `PATH` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// What the constraint stage stored (`ensemble/constraints`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintSummary {
    pub method: String,
    pub n_passed: u64,
    pub ess: f64,
    /// NaN unless histogram weighting ran.
    pub ess_fair: f64,
    /// Indices of the drawn members.
    pub drawn: Vec<u64>,
}

/// True when `path` holds an ensemble (an `ensemble` group).
pub fn is_ensemble_file(path: &Path) -> bool {
    File::open(path).ok().is_some_and(|f| f.link_exists("ensemble"))
}

/// Reads and appends to an ensemble file.
#[derive(Debug)]
pub struct EnsembleFile {
    path: PathBuf,
    header: EnsembleHeader,
    committed: u64,
    failures: u64,
}

impl EnsembleFile {
    /// Create `path` (an error if it exists, unless `overwrite`), with no members
    /// committed. The file is built as `PATH.partial` and moved into place.
    pub fn create(path: &Path, h: &EnsembleHeader, overwrite: bool) -> Result<Self> {
        if path.exists() && !overwrite {
            return Err(ferr(path, "already exists; use --force to overwrite it, or --resume to continue the ensemble it holds"));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            return Err(ferr(path, format!("directory {} does not exist", dir.display())));
        }
        let tmp = sibling(path, ".partial");
        let e = h5(path, "cannot write");
        {
            let f = new_file(&tmp).map_err(h5(path, "cannot create"))?;
            write_header(&f, h).map_err(&e)?;
            f.flush().map_err(&e)?;
        }
        std::fs::rename(&tmp, path).map_err(|err| ferr(path, format!("cannot move {} into place: {err}", tmp.display())))?;
        Ok(Self { path: path.to_path_buf(), header: h.clone(), committed: 0, failures: 0 })
    }

    /// Open an existing ensemble file (to continue it, or to read it).
    pub fn open(path: &Path) -> Result<Self> {
        let f = open_retry(path, false)?;
        let g = f.group("ensemble").map_err(|_| ferr(path, "has no 'ensemble' group: not an ensemble file"))?;
        let e = h5(path, "corrupt ensemble file");
        let header = EnsembleHeader {
            n_members: get_attr::<u64>(&g, "n_members").map_err(&e)?,
            names: read_strings(&g, "param_names"),
            units: read_strings(&g, "units"),
            priors: read_strings(&g, "priors"),
            variables: read_strings(&g, "variables"),
            output_names: read_strings(&g, "output_names"),
            output_units: read_strings(&g, "output_units"),
            derived_names: read_strings(&g, "derived_names"),
            derived_units: read_strings(&g, "derived_units"),
            derived_descriptions: read_strings(&g, "derived_descriptions"),
            sampling: get_str_attr(&g, "sampling"),
            seed: get_attr::<u64>(&g, "seed").map_err(&e)?,
            batch: get_attr::<u64>(&g, "batch").unwrap_or(0),
            model: get_str_attr(&g, "model"),
            config_toml: get_str_attr(&g, "config_toml"),
            config_dir: get_str_attr(&g, "config_dir"),
            fingerprint: get_str_attr(&g, "fingerprint"),
        };
        let committed = get_attr::<u64>(&g, "committed").map_err(&e)?;
        let failures = get_attr::<u64>(&g, "failures").unwrap_or(0);
        Ok(Self { path: path.to_path_buf(), header, committed, failures })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// What it holds.
    pub fn header(&self) -> &EnsembleHeader {
        &self.header
    }
    /// Failed evaluations among committed members.
    pub fn failures(&self) -> u64 {
        self.failures
    }
    /// The sidecar log of the runs that wrote the file (`FILE.log`: one JSON
    /// object per line, wall times, ranks, threads; kept out of the file so that
    /// the file does not depend on them).
    pub fn log_path(&self) -> PathBuf {
        sibling(&self.path, ".log")
    }

    /// The constraint stage's result, if it ran.
    pub fn constraints_summary(&self) -> Result<Option<ConstraintSummary>> {
        let f = open_retry(&self.path, false)?;
        let Ok(c) = f.group("ensemble/constraints") else { return Ok(None) };
        Ok(Some(ConstraintSummary {
            method: get_str_attr(&c, "method"),
            n_passed: get_attr::<u64>(&c, "n_passed").unwrap_or(0),
            ess: get_attr::<f64>(&c, "ess").unwrap_or(f64::NAN),
            ess_fair: get_attr::<f64>(&c, "ess_fair").unwrap_or(f64::NAN),
            drawn: c.dataset("drawn").and_then(|d| d.read_raw::<u64>()).unwrap_or_default(),
        }))
    }

    /// Column names a constraint can use: parameters, `loglike`, `loglike:VAR`,
    /// `rmse:VAR`, outputs.
    pub fn column_names(&self) -> Vec<String> {
        let h = &self.header;
        h.names
            .iter()
            .cloned()
            .chain(std::iter::once("loglike".to_string()))
            .chain(h.variables.iter().map(|v| format!("loglike:{v}")))
            .chain(h.variables.iter().map(|v| format!("rmse:{v}")))
            .chain(h.output_names.iter().cloned())
            .chain(h.derived_names.iter().cloned())
            .collect()
    }

    fn locate(&self, name: &str) -> Option<(&'static str, Option<usize>)> {
        let h = &self.header;
        if name == "loglike" {
            return Some(("loglike", None));
        }
        if let Some(v) = name.strip_prefix("loglike:") {
            return h.variables.iter().position(|x| x == v).map(|i| ("loglike_by_variable", Some(i)));
        }
        if let Some(v) = name.strip_prefix("rmse:") {
            return h.variables.iter().position(|x| x == v).map(|i| ("rmse", Some(i)));
        }
        if let Some(i) = h.names.iter().position(|x| x == name) {
            return Some(("parameters", Some(i)));
        }
        if let Some(i) = h.output_names.iter().position(|x| x == name) {
            return Some(("outputs", Some(i)));
        }
        h.derived_names.iter().position(|x| x == name).map(|i| ("derived", Some(i)))
    }

    /// The drawn members' rows of `dataset` (all columns), row-major.
    fn rows_of(g: &Group, dataset: &str, idx: &[u64]) -> hdf5::Result<(Vec<f64>, usize)> {
        let d = g.dataset(dataset)?;
        let shape = d.shape();
        let cols = shape.get(1).copied().unwrap_or(1);
        let mut out = Vec::with_capacity(idx.len() * cols);
        // Read chunk-sized row ranges that hold drawn members.
        let step = d.chunk().map_or(4096, |c| c[0]).max(1);
        let mut k = 0;
        while k < idx.len() {
            let r0 = (idx[k] as usize / step) * step;
            let r1 = (r0 + step).min(shape[0]);
            let block: Vec<f64> = if shape.len() == 1 {
                d.read_slice::<f64, _, Ix1>(s![r0..r1])?.into_raw_vec_and_offset().0
            } else {
                d.read_slice::<f64, _, Ix2>(s![r0..r1, ..])?.into_raw_vec_and_offset().0
            };
            while k < idx.len() && (idx[k] as usize) < r1 {
                let r = idx[k] as usize - r0;
                out.extend_from_slice(&block[r * cols..(r + 1) * cols]);
                k += 1;
            }
        }
        Ok((out, cols))
    }

    /// Write the constraint stage's result and the drawn members as a one-step
    /// chain (see the module docs). Replaces an earlier result.
    pub fn write_constrained(&self, plan: &Plan, c: &Constrained) -> Result<()> {
        // The whole final file is written afresh next to the ensemble and moved
        // over it when complete: a kill leaves the ensemble as it was, and the
        // result depends only on the header, the members and the plan (not on
        // the sessions that wrote the members, nor on constraints applied before).
        let path = &self.path;
        let tmp = sibling(path, ".constraining");
        let e = h5(path, "cannot write the constrained ensemble");
        let f = new_file(&tmp).map_err(h5(&tmp, "cannot create"))?;
        {
            let src = open_retry(path, false)?;
            self.copy_members(&src, &f).map_err(&e)?;
        }
        let g = f.group("ensemble").map_err(&e)?;
        let cg = new_group(&g, "constraints").map_err(&e)?;
        let method = match &plan.weighting {
            Weighting::None => "none",
            Weighting::Histogram { .. } => "histogram",
            Weighting::Likelihood { .. } => "likelihood",
        };
        set_str_attr(&cg, "method", method).map_err(&e)?;
        set_attr(&cg, "n_passed", &c.n_passed).map_err(&e)?;
        set_attr(&cg, "ess", &c.ess).map_err(&e)?;
        set_attr(&cg, "ess_fair", &c.ess_fair.unwrap_or(f64::NAN)).map_err(&e)?;
        let filters: Vec<String> = plan.filters.iter().map(|f| format!("{} < {} < {}", f.above, f.column, f.below)).collect();
        write_strings(&cg, "filters", &filters).map_err(&e)?;
        let passed: Vec<u8> = c.passed.iter().map(|&p| p as u8).collect();
        cg.new_dataset_builder().with_data(&passed).create("passed").map_err(&e)?;
        cg.new_dataset_builder().with_data(&c.weights).create("weights").map_err(&e)?;
        cg.new_dataset_builder().with_data(&c.drawn).create("drawn").map_err(&e)?;
        if let Some((m, replace, seed, _)) = plan.draw {
            set_attr(&cg, "draw_members", &(m as u64)).map_err(&e)?;
            set_attr(&cg, "draw_replace", &replace).map_err(&e)?;
            set_attr(&cg, "draw_seed", &seed).map_err(&e)?;
        }
        if !c.gofs.is_empty() {
            let nt = c.gofs[0].len();
            let flat: Vec<f64> = c.gofs.iter().flatten().copied().collect();
            cg.new_dataset::<f64>().shape((c.gofs.len(), nt)).create("gofs").and_then(|d| d.write_raw(&flat)).map_err(&e)?;
        }
        let tg = new_group(&cg, "targets").map_err(&e)?;
        for t in &plan.targets {
            let one = new_group(&tg, &t.column).map_err(&e)?;
            one.new_dataset_builder().with_data(&t.edges).create("edges").map_err(&e)?;
            one.new_dataset_builder().with_data(&t.probs).create("probabilities").map_err(&e)?;
            set_str_attr(&one, "dist", &t.dist.to_json()).map_err(&e)?;
        }
        // The drawn members as a one-step chain.
        let h = &self.header;
        let m = c.drawn.len();
        let (params, dim) = Self::rows_of(&g, "parameters", &c.drawn).map_err(&e)?;
        let (ll, _) = Self::rows_of(&g, "loglike", &c.drawn).map_err(&e)?;
        let mut quantities: Vec<(String, Vec<f64>)> = Vec::new();
        for (ds, names) in [
            ("derived", h.derived_names.clone()),
            ("outputs", h.output_names.clone()),
            ("loglike_by_variable", h.variables.iter().map(|v| format!("loglike:{v}")).collect()),
            ("rmse", h.variables.iter().map(|v| format!("rmse:{v}")).collect()),
        ] {
            if names.is_empty() {
                continue;
            }
            let (rows, cols) = Self::rows_of(&g, ds, &c.drawn).map_err(&e)?;
            for (k, n) in names.into_iter().enumerate() {
                quantities.push((n, (0..m).map(|r| rows[r * cols + k]).collect()));
            }
        }
        let mc = new_group(&f, "mcmc").map_err(&e)?;
        set_str_attr(&mc, "version", concat!("climcal ", env!("CARGO_PKG_VERSION"))).map_err(&e)?;
        set_attr(&mc, "nwalkers", &(m as i64)).map_err(&e)?;
        set_attr(&mc, "ndim", &(dim as i64)).map_err(&e)?;
        set_attr(&mc, "has_blobs", &!quantities.is_empty()).map_err(&e)?;
        mc.new_dataset::<f64>().shape(vec![m]).create("accepted").and_then(|d| d.write_raw(&vec![0.0; m])).map_err(&e)?;
        let chain = mc.new_dataset::<f64>().shape((1, m, dim)).create("chain").map_err(&e)?;
        chain.write(ArrayView3::from_shape((1, m, dim), &params).expect("shape")).map_err(&e)?;
        let lp = mc.new_dataset::<f64>().shape((1, m)).create("log_prob").map_err(&e)?;
        lp.write(ArrayView2::from_shape((1, m), &ll).expect("shape")).map_err(&e)?;
        let nq = quantities.len();
        if nq > 0 {
            let mut b = vec![0.0; m * nq];
            for (q, (_, col)) in quantities.iter().enumerate() {
                for r in 0..m {
                    b[r * nq + q] = col[r];
                }
            }
            let bd = mc.new_dataset::<f64>().shape((1, m, nq)).create("blobs").map_err(&e)?;
            bd.write(ArrayView3::from_shape((1, m, nq), &b).expect("shape")).map_err(&e)?;
        }
        let cl = new_group(&f, "climcal").map_err(&e)?;
        set_attr(&cl, "format_version", &(crate::storage::FORMAT_VERSION as i64)).map_err(&e)?;
        set_str_attr(&cl, "crate_version", env!("CARGO_PKG_VERSION")).map_err(&e)?;
        set_attr(&cl, "seed", &h.seed).map_err(&e)?;
        set_attr(&cl, "thin", &1i64).map_err(&e)?;
        set_attr(&cl, "n_steps", &1u64).map_err(&e)?;
        set_attr(&cl, "failures", &0u64).map_err(&e)?;
        set_str_attr(&cl, "model", &h.model).map_err(&e)?;
        set_str_attr(&cl, "config_toml", &h.config_toml).map_err(&e)?;
        set_str_attr(&cl, "config_dir", &h.config_dir).map_err(&e)?;
        set_str_attr(&cl, "fingerprint", &h.fingerprint).map_err(&e)?;
        set_str_attr(&cl, "kind", "constrained_ensemble").map_err(&e)?;
        write_strings(&cl, "param_names", &h.names).map_err(&e)?;
        write_strings(&cl, "units", &h.units).map_err(&e)?;
        write_strings(&cl, "priors", &h.priors).map_err(&e)?;
        write_strings(&cl, "transforms", &vec!["identity".to_string(); dim]).map_err(&e)?;
        // The quantities are per-member scalars: stored as derived quantities (the
        // last columns of `mcmc/blobs`, named by `climcal/derived_*`), as chain files
        // store theirs; `blob_names` would label `variable@time` columns, of which
        // there are none.
        if !quantities.is_empty() {
            let names: Vec<String> = quantities.iter().map(|(n, _)| n.clone()).collect();
            let units: Vec<String> = names
                .iter()
                .map(|n| {
                    h.output_names
                        .iter()
                        .position(|o| o == n)
                        .map(|i| h.output_units[i].clone())
                        .or_else(|| h.derived_names.iter().position(|o| o == n).and_then(|i| h.derived_units.get(i).cloned()))
                        .unwrap_or_default()
                })
                .collect();
            let descr: Vec<String> = names
                .iter()
                .map(|n| {
                    if let Some(v) = n.strip_prefix("loglike:") {
                        format!("log-likelihood of {v}")
                    } else if let Some(v) = n.strip_prefix("rmse:") {
                        format!("RMSE of the model against {v}")
                    } else if let Some(i) = h.derived_names.iter().position(|o| o == n) {
                        h.derived_descriptions.get(i).cloned().unwrap_or_default()
                    } else {
                        "ensemble output".to_string()
                    }
                })
                .collect();
            write_strings(&cl, "derived_names", &names).map_err(&e)?;
            write_strings(&cl, "derived_units", &units).map_err(&e)?;
            write_strings(&cl, "derived_descriptions", &descr).map_err(&e)?;
        }
        cl.new_dataset::<u64>().shape(vec![m]).create("accepted").and_then(|d| d.write_raw(&vec![0u64; m])).map_err(&e)?;
        set_attr(&mc, "iteration", &1i64).map_err(&e)?;
        f.flush().map_err(&e)?;
        drop((g, cg, tg, mc, cl, chain, lp));
        f.close().map_err(&e)?;
        std::fs::rename(&tmp, path).map_err(|err| ferr(path, format!("cannot move {} into place: {err}", tmp.display())))
    }

    /// Into the new file `dst`: the header and the committed members of `src`
    /// (this ensemble), copied chunk by chunk in member order.
    fn copy_members(&self, src: &File, dst: &File) -> hdf5::Result<()> {
        write_header(dst, &self.header)?;
        let (sg, dg) = (src.group("ensemble")?, dst.group("ensemble")?);
        let n = self.committed as usize;
        for (name, cols) in member_datasets(&self.header) {
            if cols == Some(0) {
                continue;
            }
            let (from, to) = (sg.dataset(name)?, dg.dataset(name)?);
            let step = to.chunk().map_or(4096, |c| c[0]).max(1);
            let mut r0 = 0;
            while r0 < n {
                let r1 = (r0 + step).min(n);
                if cols.is_none() {
                    to.write_slice(&from.read_slice::<f64, _, Ix1>(s![r0..r1])?, s![r0..r1])?;
                } else {
                    to.write_slice(&from.read_slice::<f64, _, Ix2>(s![r0..r1, ..])?, s![r0..r1, ..])?;
                }
                r0 = r1;
            }
        }
        set_attr(&dg, "failures", &self.failures)?;
        set_attr(&dg, "committed", &self.committed)
    }
}

impl MemberSink for EnsembleFile {
    fn committed(&self) -> u64 {
        self.committed
    }

    fn append(&mut self, start: u64, params: &[f64], ln_like: &[f64], blobs: &[f64], failures: u64) -> Result<()> {
        let path = self.path.clone();
        if start != self.committed {
            return Err(ferr(&path, format!("batch starts at member {start}, but {} are committed", self.committed)));
        }
        let n = ln_like.len();
        let (d, nv, no) = (self.header.names.len(), self.header.variables.len(), self.header.output_names.len());
        let nd = self.header.derived_names.len();
        let nb = 2 * nv + no + nd;
        let (r0, r1) = (start as usize, start as usize + n);
        if r1 as u64 > self.header.n_members || params.len() != n * d || blobs.len() != n * nb {
            return Err(ferr(&path, format!("batch of {n} members at {start} does not fit the file's layout")));
        }
        let e = h5(&path, "cannot write members");
        let f = open_retry(&path, true)?;
        let g = f.group("ensemble").map_err(&e)?;
        let put2 = |name: &str, cols: usize, off: usize| -> hdf5::Result<()> {
            if cols == 0 {
                return Ok(());
            }
            let mut buf = Vec::with_capacity(n * cols);
            for r in 0..n {
                buf.extend_from_slice(&blobs[r * nb + off..r * nb + off + cols]);
            }
            g.dataset(name)?.write_slice(ArrayView2::from_shape((n, cols), &buf).expect("shape"), s![r0..r1, ..])
        };
        if d > 0 {
            g.dataset("parameters")
                .and_then(|ds| ds.write_slice(ArrayView2::from_shape((n, d), params).expect("shape"), s![r0..r1, ..]))
                .map_err(&e)?;
        }
        g.dataset("loglike").and_then(|ds| ds.write_slice(ArrayView1::from(ln_like), s![r0..r1])).map_err(&e)?;
        put2("loglike_by_variable", nv, 0).map_err(&e)?;
        put2("rmse", nv, nv).map_err(&e)?;
        put2("outputs", no, 2 * nv).map_err(&e)?;
        put2("derived", nd, 2 * nv + no).map_err(&e)?;
        f.flush().map_err(&e)?;
        // The commit point.
        let failures = self.failures + failures;
        set_attr(&g, "failures", &failures).map_err(&e)?;
        set_attr(&g, "committed", &(r1 as u64)).map_err(&e)?;
        f.flush().map_err(&e)?;
        drop(g);
        f.close().map_err(&e)?;
        self.committed = r1 as u64;
        self.failures = failures;
        Ok(())
    }
}

impl ColumnSource for EnsembleFile {
    fn n_members(&self) -> u64 {
        self.header.n_members
    }

    fn column(&self, name: &str) -> Result<Vec<f64>> {
        let (ds, col) = self.locate(name).ok_or_else(|| {
            Error::Config(format!("'{name}' is not a stored quantity; the quantities are {:?}", self.column_names()))
        })?;
        let f = open_retry(&self.path, false)?;
        let e = h5(&self.path, "cannot read");
        let d = f.dataset(&format!("ensemble/{ds}")).map_err(&e)?;
        let n = self.header.n_members as usize;
        Ok(match col {
            None => d.read_raw::<f64>().map_err(&e)?,
            Some(c) => d.read_slice::<f64, _, Ix1>(s![0..n, c]).map_err(&e)?.into_raw_vec_and_offset().0,
        })
    }
}
