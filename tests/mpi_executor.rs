//! The MPI executor in one process (an MPI singleton, no mpirun): same chain as the
//! serial executor, failures counted per rank, clean shutdown. Multi-rank runs are
//! tested by `launch/test.d/30-mpi.sh` (mpirun -n 1, 2, 4).
#![cfg(feature = "mpi")]

use std::sync::Arc;

use climcal::executor::mpi::{self, MpiExecutor};
use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::models::toy::{Fault, Spin};
use climcal::prelude::*;

fn chain_with(exec: Arc<dyn Executor>) -> Chain {
    let model = Spin::with_iters(3, 100).with_fault(Fault::Panic, 0.7);
    let s = EnsembleSampler::new(model, 11).with_n_walkers(16).unwrap().with_executor(exec);
    let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 3], radius: 0.1 }).unwrap();
    s.run(&mut st, 60, &RunOptions::default()).unwrap()
}

// MPI can be initialised once per process, so everything runs in one test.
#[test]
fn singleton_mpi_executor_matches_serial_and_shuts_down() {
    std::panic::set_hook(Box::new(|_| {})); // injected model panics are expected
    let world = mpi::init().expect("MPI singleton starts");
    assert_eq!((world.rank(), world.size()), (0, 1));
    assert!(world.is_coordinator());
    let e = mpi::init().err().expect("second init is refused").to_string();
    assert!(e.contains("already initialised"), "{e}");
    let e = mpi::run_worker(&Spin::with_iters(3, 1), &RayonExecutor::with_threads(1).unwrap()).unwrap_err();
    assert!(e.to_string().contains("ranks other than 0"), "{e}");

    let serial = chain_with(Arc::new(SerialExecutor));
    assert!(serial.failures() > 0, "the fault region must be visited");
    let exec = Arc::new(MpiExecutor::new(RayonExecutor::with_threads(2).unwrap()).unwrap());
    assert_eq!(exec.info(), climcal::executor::ExecutorInfo { ranks: 1, threads_per_rank: 2 });
    let m = chain_with(exec.clone());
    assert_eq!(m.samples_raw(), serial.samples_raw());
    assert_eq!(m.ln_probs_raw(), serial.ln_probs_raw());
    assert_eq!(m.failures(), serial.failures());
    let st = exec.rank_stats();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].evaluations, 16 + 60 * 16);
    assert_eq!(st[0].failures, m.failures());
    let s = m.eval_stats();
    assert!(s.eval_seconds > 0.0 && s.comm_seconds >= 0.0 && s.wait_seconds == 0.0, "{s:?}");

    exec.shutdown();
    exec.shutdown(); // idempotent
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        exec.evaluate(&Spin::with_iters(3, 1), &[0.0; 3], &mut [0.0], &mut [])
    }));
    assert!(r.is_err(), "evaluate after shutdown must panic, not hang");
    drop(world);
}
