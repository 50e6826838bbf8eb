//! Projection files (feature `hdf5`): per-draw series of the model outputs under
//! each scenario, written by `climcal project`.
//!
//! Layout (group `projection`):
//!
//! - attrs `format_version`, `crate_version`, `source` (the chain or ensemble file),
//!   `source_kind` (`chain` or `constrained_ensemble`), `model`, `config_toml`,
//!   `config_dir` (the run file the model was rebuilt from), `discard` (steps
//!   dropped as burn-in), `end_year`, `blend_years`, `n_history` (leading years
//!   that are the calibration's own forcing), `last_history_year`;
//! - `years (n_years)`, string datasets `param_names`, `output_names`,
//!   `scenario_names`; `parameters (n_draws, n_params)` (the draws, physical
//!   values, in the chain's parameter order) and `draw_index (n_draws)` (the
//!   draw's index among the source's kept samples: `row · n_walkers + walker`
//!   after the burn-in, or the member's position in the constrained ensemble);
//! - one group per scenario, `projection/<name>`: attrs `label`, `source`,
//!   `failures`, `join_offset` (historical − scenario forcing in the last
//!   historical year, W m⁻²: total, aerosol, natural, other), `join_step` and
//!   `join_step_unblended` (W m⁻², at scales 1), and the summaries
//!   `warming_2081-2100` and `warming_2100` (K relative to 1850–1900: 5, 50, 95 %);
//!   datasets `forcing_aerosol`, `forcing_natural`, `forcing_other` (n_years, the
//!   joined forcing at scales 1), `failed (n_draws, u8)` and one `(n_draws,
//!   n_years)` dataset per model output, named as the output
//!   (`Surface Temperature`, …), NaN for failed draws.
//!
//! The file is written as `PATH.partial` and moved into place when complete, so
//! an interrupted run never leaves a file that looks finished.

use std::path::{Path, PathBuf};

use hdf5::{File, Group};
use ndarray_h5::{s, ArrayView2};

use crate::error::Result;
use crate::models::forcing::Forcing;
use crate::projection::scenario::JoinReport;

use super::hdf::{ferr, h5, set_attr, set_str_attr, write_strings};

/// Version of the `projection` group layout.
pub const PROJECTION_FORMAT_VERSION: u32 = 1;

/// What a projection file records besides the series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectionHeader {
    pub source: String,
    pub source_kind: String,
    pub model: String,
    pub config_toml: String,
    pub config_dir: String,
    pub discard: u64,
    pub end_year: f64,
    pub blend_years: u32,
    pub n_history: usize,
    pub last_history_year: f64,
    pub years: Vec<f64>,
    pub param_names: Vec<String>,
    pub output_names: Vec<String>,
    pub scenario_names: Vec<String>,
    /// `n_draws × n_params`, row-major.
    pub parameters: Vec<f64>,
    pub draw_index: Vec<u64>,
}

/// A projection file being written.
pub struct ProjectionFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    n_draws: usize,
    n_years: usize,
    outputs: Vec<String>,
}

impl ProjectionFile {
    /// Start `path` (an error if it exists, unless `overwrite`).
    pub fn create(path: &Path, h: &ProjectionHeader, overwrite: bool) -> Result<Self> {
        if path.exists() && !overwrite {
            return Err(ferr(path, "already exists; use --force to overwrite it"));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            return Err(ferr(path, format!("directory {} does not exist; create it or choose another -o", dir.display())));
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let e = h5(path, "cannot write");
        let f = File::create(&tmp).map_err(h5(path, "cannot create"))?;
        let g = f.create_group("projection").map_err(&e)?;
        let np = h.param_names.len();
        let n_draws = h.draw_index.len();
        set_attr(&g, "format_version", &(PROJECTION_FORMAT_VERSION as i64)).map_err(&e)?;
        set_str_attr(&g, "crate_version", env!("CARGO_PKG_VERSION")).map_err(&e)?;
        for (k, v) in [
            ("source", &h.source),
            ("source_kind", &h.source_kind),
            ("model", &h.model),
            ("config_toml", &h.config_toml),
            ("config_dir", &h.config_dir),
        ] {
            set_str_attr(&g, k, v).map_err(&e)?;
        }
        set_attr(&g, "discard", &h.discard).map_err(&e)?;
        set_attr(&g, "end_year", &h.end_year).map_err(&e)?;
        set_attr(&g, "blend_years", &h.blend_years).map_err(&e)?;
        set_attr(&g, "n_history", &(h.n_history as u64)).map_err(&e)?;
        set_attr(&g, "last_history_year", &h.last_history_year).map_err(&e)?;
        g.new_dataset_builder().with_data(&h.years).create("years").map_err(&e)?;
        write_strings(&g, "param_names", &h.param_names).map_err(&e)?;
        write_strings(&g, "output_names", &h.output_names).map_err(&e)?;
        write_strings(&g, "scenario_names", &h.scenario_names).map_err(&e)?;
        let pv = ArrayView2::from_shape((n_draws, np), &h.parameters)
            .map_err(|_| ferr(path, format!("{} parameter values for {n_draws} draws × {np}", h.parameters.len())))?;
        g.new_dataset_builder().with_data(pv).create("parameters").map_err(&e)?;
        g.new_dataset_builder().with_data(&h.draw_index).create("draw_index").map_err(&e)?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            file: Some(f),
            n_draws,
            n_years: h.years.len(),
            outputs: h.output_names.clone(),
        })
    }

    fn group(&self, scenario: &str) -> Result<Group> {
        let f = self.file.as_ref().expect("open until finish");
        f.group(&format!("projection/{scenario}")).map_err(h5(&self.path, "cannot write"))
    }

    /// Add scenario `name`'s group with its joined forcing and datasets of NaN.
    pub fn add_scenario(&self, name: &str, label: &str, source: &str, forcing: &Forcing, report: &JoinReport) -> Result<()> {
        let e = h5(&self.path, "cannot write");
        let f = self.file.as_ref().expect("open until finish");
        let g = f.create_group(&format!("projection/{name}")).map_err(&e)?;
        set_str_attr(&g, "label", label).map_err(&e)?;
        set_str_attr(&g, "source", source).map_err(&e)?;
        set_attr(&g, "failures", &0u64).map_err(&e)?;
        g.new_attr::<f64>().shape(4).create("join_offset").and_then(|a| a.write_raw(&report.offset)).map_err(&e)?;
        set_attr(&g, "join_step", &report.step).map_err(&e)?;
        set_attr(&g, "join_step_unblended", &report.step_unblended).map_err(&e)?;
        for (k, v) in
            [("forcing_aerosol", forcing.aerosol()), ("forcing_natural", forcing.natural()), ("forcing_other", forcing.other())]
        {
            g.new_dataset_builder().with_data(v).create(k).map_err(&e)?;
        }
        g.new_dataset::<u8>().shape(self.n_draws).create("failed").map_err(&e)?;
        let rows = (4 * 1024 * 1024 / (8 * self.n_years.max(1))).clamp(1, self.n_draws.max(1));
        for o in &self.outputs {
            g.new_dataset::<f64>()
                .chunk((rows, self.n_years.max(1)))
                .fill_value(f64::NAN)
                .shape((self.n_draws, self.n_years))
                .create(o.as_str())
                .map_err(&e)?;
        }
        Ok(())
    }

    /// Write draws `start..start + failed.len()` of scenario `name`: `values` is
    /// `draws × outputs × years` (as [`crate::projection::Projection::values`]).
    pub fn write_batch(&self, name: &str, start: usize, values: &[f64], failed: &[bool]) -> Result<()> {
        let e = h5(&self.path, "cannot write");
        let g = self.group(name)?;
        let (n, ny, no) = (failed.len(), self.n_years, self.outputs.len());
        let mut buf = vec![0.0; n * ny];
        for (o, out) in self.outputs.iter().enumerate() {
            for k in 0..n {
                buf[k * ny..(k + 1) * ny].copy_from_slice(&values[(k * no + o) * ny..(k * no + o + 1) * ny]);
            }
            g.dataset(out)
                .and_then(|d| d.write_slice(ArrayView2::from_shape((n, ny), &buf).expect("shape"), s![start..start + n, ..]))
                .map_err(&e)?;
        }
        let fl: Vec<u8> = failed.iter().map(|&f| f as u8).collect();
        g.dataset("failed").and_then(|d| d.write_slice(&fl, s![start..start + n])).map_err(&e)?;
        Ok(())
    }

    /// Record scenario `name`'s failure count and summaries (`(attr name, [5, 50, 95 %])`).
    pub fn finish_scenario(&self, name: &str, failures: u64, summaries: &[(String, [f64; 3])]) -> Result<()> {
        let e = h5(&self.path, "cannot write");
        let g = self.group(name)?;
        set_attr(&g, "failures", &failures).map_err(&e)?;
        for (k, q) in summaries {
            g.new_attr::<f64>().shape(3).create(k.as_str()).and_then(|a| a.write_raw(q)).map_err(&e)?;
        }
        Ok(())
    }

    /// Close the file and move it into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(f) = self.file.take() {
            f.flush().map_err(h5(&self.path, "cannot write"))?;
            drop(f);
        }
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|err| ferr(&self.path, format!("cannot move {} into place: {err}", self.tmp.display())))?;
        Ok(self.path.clone())
    }
}

impl Drop for ProjectionFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
