//! `[model] name = "rscm"` through the `climcal` binary: the twin experiment of
//! cluster-examples/rscm-twin.toml runs from its run file (a few steps); a parameter path the model lacks stops the run at start-up with
//! exit 2, naming the path and listing what exists.
#![cfg(all(feature = "rscm", feature = "hdf5"))]

use std::path::Path;
use std::process::Command;

use climcal::sampler::Chain;

fn run(dir: &Path, config: &str, extra: &[&str]) -> (i32, String) {
    std::fs::write(dir.join("run.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_climcal"))
        .current_dir(dir)
        .args(["run", "run.toml", "-o", "out.h5", "-q"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn twin_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples");
    std::fs::create_dir(dir.path().join("rscm-twin")).unwrap();
    for f in ["model.toml", "observations.csv"] {
        std::fs::copy(ex.join("rscm-twin").join(f), dir.path().join("rscm-twin").join(f)).unwrap();
    }
    (dir, std::fs::read_to_string(ex.join("rscm-twin.toml")).unwrap())
}

/// End to end through the CLI, kept short (RSCM is slow in debug builds: ~60 ms
/// an evaluation here); the full twin run and its coverage check are
/// cluster-examples/rscm-twin.sh.
#[test]
fn rscm_twin_runs_from_its_run_file() {
    let (dir, cfg) = twin_config();
    let (code, err) = run(dir.path(), &cfg, &["--steps", "4", "--threads", "2"]);
    assert_eq!(code, 0, "{err}");
    let chain = Chain::load(dir.path().join("out.h5")).unwrap();
    assert_eq!(chain.n_rows(), 4);
    assert_eq!(chain.failures(), 0);
    assert!(chain.ln_probs_raw().iter().all(|v| v.is_finite()));
    // The walkers started near tau = 60, erf_2xco2 = 3.0 and stay inside the prior.
    let flat = chain.flat_samples(0);
    assert!(flat.column(0).iter().all(|&t| (5.0..200.0).contains(&t)));
}

#[test]
fn a_bad_parameter_path_exits_2_naming_it() {
    let (dir, cfg) = twin_config();
    let bad = cfg.replace("parameter = \"erf_2xco2\"", "parameter = \"erf2x\"");
    let (code, err) = run(dir.path(), &bad, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CO2ERF.erf2x") && err.contains("conc_pi, erf_2xco2"), "{err}");
    assert!(!dir.path().join("out.h5").exists());
}
