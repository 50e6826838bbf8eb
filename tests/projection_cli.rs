//! `climcal project`: the historical years of a projection are the calibration's
//! own outputs, bit for bit (against the chain's stored model values and a fresh
//! run of the rebuilt model); the file's layout; the constrained ensemble as
//! input; threads do not change the file; bad input exits 2 before any model runs.
#![cfg(all(feature = "hdf5", unix))]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use climcal::config::RunConfig;
use climcal::likelihood::model_at_observations;
use climcal::storage::read_chain;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_climcal")).args(args).stdin(Stdio::null()).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A copy of `example` in `dir` with its data paths made absolute and `edits` applied.
fn run_file(dir: &Path, example: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join("cluster-examples").join(example)).unwrap();
    let data = root().join("cluster-examples/data");
    text = text.replace("\"data/", &format!("\"{}/", data.display()));
    for (a, b) in edits {
        assert!(text.contains(a), "{example} has no '{a}'");
        text = text.replace(a, b);
    }
    let p = dir.join(example);
    std::fs::write(&p, text).unwrap();
    p
}

/// A short HadCRUT5 calibration (64 walkers × 300 steps, every 10th stored).
fn short_chain(dir: &Path) -> PathBuf {
    let cfg = run_file(dir, "two-layer-hadcrut5.toml", &[("thin = 48", "thin = 10")]);
    let out = dir.join("chain.h5");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--steps", "300", "-q", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    out
}

fn read2(f: &hdf5::File, name: &str) -> (Vec<f64>, usize, usize) {
    let d = f.dataset(name).unwrap_or_else(|_| panic!("no dataset {name}"));
    let s = d.shape();
    (d.read_raw().unwrap(), s[0], s[1])
}

#[test]
fn historical_years_reproduce_the_calibration_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let chain_path = short_chain(dir.path());
    let out = dir.path().join("proj.h5");
    let (code, stdout, err) = run(&[
        "project",
        chain_path.to_str().unwrap(),
        "-s",
        "ssp245",
        "-s",
        "ssp585",
        "--draws",
        "60",
        "--discard",
        "100",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("ssp245 (SSP2-4.5)") && stdout.contains("ssp585 (SSP5-8.5)"), "{stdout}");
    assert!(err.contains("step 2024→2025"), "the join is reported: {err}");

    let (chain, meta) = read_chain(&chain_path).unwrap();
    let meta = meta.unwrap();
    let f = hdf5::File::open(&out).unwrap();
    let years: Vec<f64> = f.dataset("projection/years").unwrap().read_raw().unwrap();
    assert_eq!((years[0], *years.last().unwrap(), years.len()), (1750.0, 2100.0, 351));
    let n_hist = f.group("projection").unwrap().attr("n_history").unwrap().read_scalar::<u64>().unwrap() as usize;
    assert_eq!(n_hist, 275); // 1750–2024: the calibration's forcing
    let idx: Vec<u64> = f.dataset("projection/draw_index").unwrap().read_raw().unwrap();
    let (params, n, dim) = read2(&f, "projection/parameters");
    assert_eq!((n, dim, idx.len()), (60, 6, 60));

    // The kept samples start after --discard 100 steps (thin 10: 10 rows).
    let nw = chain.n_walkers();
    let rows = chain.n_rows();
    assert_eq!(rows, 30);
    let kept = (rows - 10) * nw;
    assert_eq!(idx, (0..60u64).map(|i| i * kept as u64 / 60).collect::<Vec<_>>(), "evenly thinned");
    let blob_names = &meta.blob_names;
    let nb = chain.n_blobs();
    let cfg = RunConfig::from_toml_str(&meta.config_toml, &meta.config_dir).unwrap();
    let problem = cfg.build_problem().unwrap();
    let post = problem.posterior.as_ref().unwrap();
    let target = post.target();
    for scen in ["ssp245", "ssp585"] {
        let (t, nt, ny) = read2(&f, &format!("projection/{scen}/Surface Temperature"));
        let (h, _, _) = read2(&f, &format!("projection/{scen}/Ocean Heat Content"));
        assert_eq!((nt, ny), (60, 351));
        for k in 0..n {
            let flat = 10 * nw + idx[k] as usize; // sample index in the whole chain
            let (row, walker) = (flat / nw, flat % nw);
            let theta = &chain.samples_raw()[(row * nw + walker) * dim..(row * nw + walker + 1) * dim];
            assert_eq!(&params[k * dim..(k + 1) * dim], theta, "parameters of draw {k}");
            // 1. The chain's stored model values at the observation times.
            let blob = &chain.blobs_raw()[(row * nw + walker) * nb..(row * nw + walker + 1) * nb];
            let mut col = 0;
            for (var, obs) in target.variables() {
                let series = if var == "Surface Temperature" { &t[k * ny..(k + 1) * ny] } else { &h[k * ny..(k + 1) * ny] };
                // The posterior's own mapping of a series to the observations
                // (re-baselined over the variable's reference period).
                let mut at_obs = vec![f64::NAN; obs.times.len()];
                model_at_observations(&years, series, obs, |j, v| at_obs[j] = v).unwrap();
                for (j, &ot) in obs.times.iter().enumerate() {
                    assert!(years.iter().position(|&y| y == ot).unwrap() < n_hist);
                    assert_eq!(blob_names[col], format!("{var}@{ot}"));
                    assert_eq!(at_obs[j].to_bits(), blob[col].to_bits(), "{scen} draw {k} {var} {ot}");
                    col += 1;
                }
            }
            // 2. The rebuilt calibration model, every output and year.
            let run = post.runner().run(&post.model_params(theta)).unwrap();
            for (name, s) in [("Surface Temperature", &t), ("Ocean Heat Content", &h)] {
                let c = run.get(name).unwrap();
                assert_eq!(c.len(), n_hist);
                let p = &s[k * ny..k * ny + n_hist];
                assert!(p.iter().zip(c).all(|(a, b)| a.to_bits() == b.to_bits()), "{scen} draw {k} {name}");
            }
        }
        // The scenarios differ after the join, not before.
        let q: Vec<f64> = f.group(&format!("projection/{scen}")).unwrap().attr("warming_2081-2100").unwrap().read_raw().unwrap();
        assert!(q[0] < q[1] && q[1] < q[2] && q[1] > 1.0, "{scen}: {q:?}");
    }
    let (a, _, ny) = read2(&f, "projection/ssp245/Surface Temperature");
    let (b, _, _) = read2(&f, "projection/ssp585/Surface Temperature");
    assert!((0..n).all(|k| a[k * ny..k * ny + n_hist] == b[k * ny..k * ny + n_hist]));
    assert!((0..n).all(|k| b[k * ny + ny - 1] > a[k * ny + ny - 1]), "SSP5-8.5 is warmer than SSP2-4.5 in 2100");

    // Threads do not change the file's series.
    let out1 = dir.path().join("proj1.h5");
    let (code, _, err) = run(&[
        "project",
        chain_path.to_str().unwrap(),
        "-s",
        "ssp245",
        "-s",
        "ssp585",
        "--draws",
        "60",
        "--discard",
        "100",
        "--threads",
        "1",
        "--batch",
        "7",
        "-q",
        "-o",
        out1.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let g = hdf5::File::open(&out1).unwrap();
    for ds in ["projection/ssp245/Surface Temperature", "projection/ssp585/Net Energy Imbalance", "projection/parameters"] {
        let (x, _, _) = read2(&f, ds);
        let (y, _, _) = read2(&g, ds);
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "{ds}");
    }
}

#[test]
fn a_constrained_ensemble_is_projected_member_by_member() {
    let dir = tempfile::tempdir().unwrap();
    // As tests/ensemble_cli.rs: 6000 members keep the example's min_ess = 841.
    let cfg = run_file(dir.path(), "two-layer-fair-style.toml", &[]);
    let ens = dir.path().join("ens.h5");
    let (code, _, err) = run(&["ensemble", cfg.to_str().unwrap(), "-n", "6000", "-q", "-o", ens.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let out = dir.path().join("proj.h5");
    let (code, stdout, err) =
        run(&["project", ens.to_str().unwrap(), "-s", "ssp126", "--draws", "all", "-q", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("841 draws per scenario"), "{stdout}");
    let f = hdf5::File::open(&out).unwrap();
    let kind = f.group("projection").unwrap().attr("source_kind").unwrap().read_scalar::<hdf5::types::VarLenUnicode>();
    assert_eq!(kind.map(|s| s.to_string()).ok().as_deref(), Some("constrained_ensemble"));
    // Every constrained member, in order, and its stored warming 2015–2024 (a
    // derived quantity of the ensemble run) from the projection's historical years.
    let (chain, meta) = read_chain(&ens).unwrap();
    let meta = meta.unwrap();
    let (params, n, dim) = read2(&f, "projection/parameters");
    assert_eq!((n, dim), (841, chain.dim()));
    assert_eq!(params, chain.samples_raw());
    let years: Vec<f64> = f.dataset("projection/years").unwrap().read_raw().unwrap();
    let (t, _, ny) = read2(&f, "projection/ssp126/Surface Temperature");
    let q = meta.derived_names.iter().position(|d| d == "warming_2015-2024").expect("stored warming");
    let nb = chain.n_blobs();
    let col = nb - meta.derived_names.len() + q;
    let pre = climcal::derived::period_indices(&years, 1850.0, 1900.0).unwrap();
    let recent = climcal::derived::period_indices(&years, 2015.0, 2024.0).unwrap();
    for k in 0..n {
        let s = &t[k * ny..(k + 1) * ny];
        let w = climcal::derived::mean(s, recent.clone()) - climcal::derived::mean(s, pre.clone());
        assert_eq!(w.to_bits(), chain.blobs_raw()[k * nb + col].to_bits(), "member {k}");
    }
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let chain = short_chain(dir.path());
    let c = chain.to_str().unwrap();
    let out = dir.path().join("p.h5");
    let o = out.to_str().unwrap();
    let expect = |args: &[&str], what: &str| {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: expected '{what}' in: {err}");
        assert!(!out.exists() || args.contains(&"--force") || what.contains("already exists"), "{args:?} wrote a file");
    };
    expect(&["project", c, "-s", "ssp999", "-o", o], "unknown scenario 'ssp999'");
    expect(&["project", c, "-s", "ssp245", "-s", "SSP2-4.5", "-o", o], "given twice");
    expect(&["project", c, "-s", "ssp245", "--draws", "0", "-o", o], "--draws must be a positive integer");
    expect(&["project", c, "-s", "ssp245", "--end", "2600", "-o", o], "covers 1750–2500");
    expect(&["project", c, "-s", "ssp245", "--end", "2000", "-o", o], "ends in 2024");
    expect(&["project", c, "-s", "ssp245", "--discard", "100000", "-o", o], "no samples left");
    expect(&["project", "nope.h5", "-s", "ssp245", "-o", o], "no such file");
    expect(&["project", c, "-s", "x=missing.csv", "-o", o], "missing.csv");
    // An existing output without --force.
    std::fs::write(&out, b"keep me").unwrap();
    expect(&["project", c, "-s", "ssp245", "-o", o], "already exists; use --force");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    std::fs::remove_file(&out).unwrap();
    // A model on a constant forcing (abrupt-4xCO2) cannot be projected.
    let cfg = run_file(dir.path(), "two-layer-4xco2.toml", &[]);
    let c4 = dir.path().join("4x.h5");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--steps", "4", "-q", "-o", c4.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    expect(&["project", c4.to_str().unwrap(), "-s", "ssp245", "-o", o], "cannot be projected");
    // A plain density has no outputs.
    let toy = root().join("cluster-examples/toy-gaussian.toml");
    let ct = dir.path().join("toy.h5");
    let (code, _, err) = run(&["run", toy.to_str().unwrap(), "--steps", "4", "-q", "-o", ct.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    expect(&["project", ct.to_str().unwrap(), "-s", "ssp245", "-o", o], "nothing to project");
    assert!(!out.exists());
}
