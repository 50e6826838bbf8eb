//! With feature `rscm`, the published RSCM crates bring PyO3, which links the
//! binaries to libpython. Give them an rpath to the LIBDIR of the interpreter PyO3
//! builds against (`$PYO3_PYTHON`, else `python3`), so that `climcal` runs without
//! `LD_LIBRARY_PATH` even when libpython lives outside the loader's default paths
//! (pyenv, conda, modules on a cluster). Nothing is done without the feature.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_RSCM").is_none() {
        return;
    }
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).args(["-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')"]).output();
    match out {
        Ok(o) if o.status.success() => {
            let libdir = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if !libdir.is_empty() {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
            }
        }
        _ => println!("cargo:warning=feature rscm: cannot run {python} to find libpython's directory; set PYO3_PYTHON"),
    }
}
