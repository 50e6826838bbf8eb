//! HDF5 chain files through the library: write → read identity, the checkpoint
//! sink behind `RunOptions::checkpoint_path`, and the commit protocol (rows past
//! the commit point and half-written state slots are ignored on resume).
#![cfg(feature = "hdf5")]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use climcal::config::RunConfig;
use climcal::prelude::*;
use climcal::storage::{read_chain, read_resume, ChainMeta, ChainStorage, HdfSink};

fn linear_config(dir: &Path) -> RunConfig {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let text = std::fs::read_to_string(data.join("toy_linear.toml")).unwrap();
    let _ = dir;
    RunConfig::from_toml_str(&text, data).unwrap()
}

fn sampler_for(cfg: &RunConfig) -> (climcal::config::Problem, EnsembleSampler<Arc<dyn LogDensity>>) {
    let p = cfg.build_problem().unwrap();
    let s = cfg.sampler(&p, 7, Arc::new(SerialExecutor)).unwrap();
    (p, s)
}

#[test]
fn save_then_load_is_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = linear_config(dir.path());
    let (p, s) = sampler_for(&cfg);
    for thin in [1, 3] {
        let mut st = p.initial_state(&s).unwrap();
        let opts = RunOptions { thin, ..Default::default() };
        let chain = s.run(&mut st, 50, &opts).unwrap();
        assert_eq!(chain.n_blobs(), 21);
        let path = dir.path().join(format!("c{thin}.h5"));
        chain.save(&path).unwrap();
        let back = Chain::load(&path).unwrap();
        assert_eq!(back.names(), chain.names());
        assert_eq!(back.samples_raw(), chain.samples_raw());
        assert_eq!(back.ln_probs_raw(), chain.ln_probs_raw());
        assert_eq!(back.blobs_raw(), chain.blobs_raw());
        assert_eq!(back.accepted(), chain.accepted());
        assert_eq!((back.n_steps(), back.thin(), back.failures()), (50, thin, chain.failures()));
        // emcee's acceptance fraction (accepted / iteration) from the file is ours.
        let f = hdf5::File::open(&path).unwrap();
        let acc = f.dataset("mcmc/accepted").unwrap().read_raw::<f64>().unwrap();
        let it = f.group("mcmc").unwrap().attr("iteration").unwrap().read_scalar::<i64>().unwrap();
        drop(f);
        for (a, b) in acc.iter().zip(chain.acceptance_fraction()) {
            assert!((a / it as f64 - b).abs() < 1e-12, "{a} / {it} vs {b}");
        }
        // A saved chain holds no sampler state: it cannot be resumed.
        let e = read_resume(&path).unwrap_err().to_string();
        assert!(e.contains("cannot be resumed"), "{e}");
    }
}

#[test]
fn checkpoint_path_writes_the_same_chain_and_appends_continuations() {
    let dir = tempfile::tempdir().unwrap();
    let d = climcal::models::toy::Gaussian::standard(4);
    let s = EnsembleSampler::new(d, 9).serial().with_n_walkers(12).unwrap();
    let init = InitMethod::Ball { center: vec![0.0; 4], radius: 0.5 };
    let mut mem_state = s.initialize_without_prior(init.clone()).unwrap();
    let mem = s.run(&mut mem_state, 80, &RunOptions::default()).unwrap();

    let path = dir.path().join("lib.h5");
    let opts = RunOptions { checkpoint_every: 13, checkpoint_path: Some(path.clone()), ..Default::default() };
    let mut st = s.initialize_without_prior(init.clone()).unwrap();
    s.run(&mut st, 30, &opts).unwrap();
    // The same state continues into the same file.
    s.run(&mut st, 50, &opts).unwrap();
    let (back, meta) = read_chain(&path).unwrap();
    assert_eq!(back.samples_raw(), mem.samples_raw());
    assert_eq!(back.accepted(), mem.accepted());
    assert_eq!(meta.unwrap().seed, 9);
    assert_eq!(read_resume(&path).unwrap().state, mem_state);
    // Another run's state does not go into this file, and the file stays as it was.
    let before = std::fs::read(&path).unwrap();
    let mut other = s.initialize_without_prior(init).unwrap();
    let e = s.run(&mut other, 5, &opts).unwrap_err();
    assert!(e.is_bad_input() && e.to_string().contains("another run"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Simulate a kill between "rows appended and state written" and "iteration
/// bumped": the resume must use the previous commit and drop the extra rows.
#[test]
fn uncommitted_rows_and_state_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = linear_config(dir.path());
    let (p, s) = sampler_for(&cfg);
    let opts = RunOptions { checkpoint_every: 10, ..Default::default() };

    // Uninterrupted reference: 40 steps.
    let mut ref_state = p.initial_state(&s).unwrap();
    let reference = s.run(&mut ref_state, 40, &opts).unwrap();

    // 20 steps committed at 10 and 20, then pretend the commit at 20 never happened.
    let path = dir.path().join("x.h5");
    let mut st = p.initial_state(&s).unwrap();
    let meta = ChainMeta::for_density(&*p.density, 7, 1);
    let mut sink = HdfSink::create(&path, &meta, &st, p.density.n_blobs(), false).unwrap();
    s.run_with_sink(&mut st, 20, &opts, Some(&mut sink), |_| ControlFlow::Continue(())).unwrap();
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        f.group("mcmc").unwrap().attr("iteration").unwrap().write_scalar(&10i64).unwrap();
    }
    // Readers see 10 rows; the dataset still holds 20.
    assert_eq!(Chain::load(&path).unwrap().n_rows(), 10);
    let (mut sink, point) = HdfSink::open_resume(&path).unwrap();
    assert_eq!((point.rows, point.state.iteration), (10, 10));
    {
        let f = hdf5::File::open(&path).unwrap();
        assert_eq!(f.dataset("mcmc/chain").unwrap().shape()[0], 10, "rows past the commit are dropped");
    }
    let mut st = point.state;
    s.run_with_sink(&mut st, 30, &opts, Some(&mut sink), |_| ControlFlow::Continue(())).unwrap();
    let back = sink.load().unwrap();
    assert_eq!(back.samples_raw(), reference.samples_raw());
    assert_eq!(back.blobs_raw(), reference.blobs_raw());
    assert_eq!(back.accepted(), reference.accepted());
    assert_eq!(st, ref_state);

    // A slot marked invalid (killed while writing it) is never used.
    {
        let f = hdf5::File::open_rw(&path).unwrap();
        for i in 0..2 {
            f.group(&format!("climcal/state{i}")).unwrap().attr("valid").unwrap().write_scalar(&0u8).unwrap();
        }
    }
    let e = read_resume(&path).unwrap_err().to_string();
    assert!(e.contains("no complete sampler state"), "{e}");
}

#[test]
fn memory_and_hdf5_storage_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = climcal::models::toy::Rosenbrock { dim: 3, scale: 20.0 };
    let s = EnsembleSampler::new(d, 1).serial().with_n_walkers(8).unwrap();
    let init = InitMethod::Ball { center: vec![1.0; 3], radius: 0.1 };
    let opts = RunOptions { thin: 2, checkpoint_every: 6, ..Default::default() };
    let mut a = s.initialize_without_prior(init.clone()).unwrap();
    let mut mem = climcal::storage::MemoryStorage::new();
    s.run_with_sink(&mut a, 33, &opts, Some(&mut mem), |_| ControlFlow::Continue(())).unwrap();
    let mut b = s.initialize_without_prior(init).unwrap();
    let path = dir.path().join("r.h5");
    let mut sink = HdfSink::create(&path, &ChainMeta::for_density(s.density(), 1, 2), &b, 0, false).unwrap();
    s.run_with_sink(&mut b, 33, &opts, Some(&mut sink), |_| ControlFlow::Continue(())).unwrap();
    let (m, h) = (mem.load().unwrap(), Chain::load(&path).unwrap());
    assert_eq!(m.samples_raw(), h.samples_raw());
    assert_eq!(h.n_rows(), 16);
    assert_eq!(h.n_steps(), 33);
    assert_eq!(m.accepted(), h.accepted());
}

/// Per-rank evaluating / communicating / waiting figures: the sink stores what its
/// source reports at every checkpoint (one row per rank, the rank count may change
/// on resume), `read_rank_times` returns it, and the chain itself is untouched.
#[test]
fn rank_times_are_stored_at_each_checkpoint() {
    use climcal::executor::RankStats;
    use climcal::storage::{read_rank_times, RankTimesSource};
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let d = climcal::models::toy::Rosenbrock { dim: 3, scale: 20.0 };
    let s = EnsembleSampler::new(d, 1).serial().with_n_walkers(8).unwrap();
    let init = InitMethod::Ball { center: vec![1.0; 3], radius: 0.1 };
    let opts = RunOptions { checkpoint_every: 5, ..Default::default() };
    let path = dir.path().join("t.h5");
    let mut st = s.initialize_without_prior(init.clone()).unwrap();
    let mut sink = HdfSink::create(&path, &ChainMeta::for_density(s.density(), 1, 1), &st, 0, false).unwrap();
    assert_eq!(read_rank_times(&path), None, "nothing stored before a source reports");
    assert_eq!(climcal::storage::read_eval_times(&path), None);
    // The source counts its calls: one per checkpoint (steps 5, 10 and the last, 12).
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    sink.record_rank_times(RankTimesSource(Arc::new(move || {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        (0..2)
            .map(|r| RankStats {
                evaluations: 10 * n + r,
                failures: r,
                eval_seconds: 1.5 * n as f64,
                comm_seconds: 0.25,
                wait_seconds: 0.5 + r as f64,
            })
            .collect()
    })));
    s.run_with_sink(&mut st, 12, &opts, Some(&mut sink), |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let rt = read_rank_times(&path).unwrap();
    assert_eq!(rt.len(), 2);
    assert_eq!(rt[1], RankStats { evaluations: 31, failures: 1, eval_seconds: 4.5, comm_seconds: 0.25, wait_seconds: 1.5 });
    assert_eq!(climcal::storage::read_eval_times(&path), Some([4.5, 0.25, 0.5]), "rank 0's split in the attrs");
    // Resumed on three ranks: three rows.
    let (mut sink, point) = HdfSink::open_resume(&path).unwrap();
    sink.set_run_info(3, 1, 20).unwrap();
    assert_eq!(read_rank_times(&path), None, "rows for the new layout, zero until it reports");
    let one = RankStats { evaluations: 1, ..RankStats::default() };
    sink.record_rank_times(RankTimesSource(Arc::new(move || vec![one; 3])));
    let mut st = point.state;
    s.run_with_sink(&mut st, 8, &opts, Some(&mut sink), |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(read_rank_times(&path).unwrap(), vec![one; 3]);
    // The chain is the one a run without any of this writes.
    let mut plain = s.initialize_without_prior(init).unwrap();
    let reference = s.run(&mut plain, 20, &RunOptions::default()).unwrap();
    assert_eq!(Chain::load(&path).unwrap().samples_raw(), reference.samples_raw());
}
