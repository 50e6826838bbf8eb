//! Moré–Thuente line search whose first trial step is scaled to length 1.
//!
//! argmin's L-BFGS starts with the direction `−∇f` (no curvature history yet) and
//! the line search tries the step `α = 1` first, i.e. a jump of `‖∇f‖`, which on a
//! steep objective (a likelihood with hundreds of points) lands far away and costs
//! many trial evaluations to come back from. As L-BFGS-B does, the very first
//! search here tries `α = min(1, 1/‖d‖)`; every later one tries `α = 1`, the
//! natural quasi-Newton step.

use argmin::core::{CostFunction, Error as ArgminError, Gradient, IterState, Problem, Solver, KV};
use argmin::solver::linesearch::{LineSearch, MoreThuenteLineSearch};

type Ls = MoreThuenteLineSearch<Vec<f64>, Vec<f64>, f64>;
type St = IterState<Vec<f64>, Vec<f64>, (), (), (), f64>;

#[derive(Clone)]
pub(crate) struct ScaledFirstStep {
    inner: Ls,
    first: bool,
}

impl ScaledFirstStep {
    pub fn new() -> Self {
        Self { inner: MoreThuenteLineSearch::new(), first: true }
    }
}

impl LineSearch<Vec<f64>, f64> for ScaledFirstStep {
    fn search_direction(&mut self, d: Vec<f64>) {
        let alpha = if self.first {
            self.first = false;
            let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            if n > 1.0 && n.is_finite() {
                1.0 / n
            } else {
                1.0
            }
        } else {
            1.0
        };
        self.inner.initial_step_length(alpha).expect("alpha > 0");
        self.inner.search_direction(d);
    }

    fn initial_step_length(&mut self, alpha: f64) -> Result<(), ArgminError> {
        self.inner.initial_step_length(alpha)
    }
}

impl<O> Solver<O, St> for ScaledFirstStep
where
    O: CostFunction<Param = Vec<f64>, Output = f64> + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    fn name(&self) -> &str {
        "More-Thuente Line search (scaled first step)"
    }
    fn init(&mut self, problem: &mut Problem<O>, state: St) -> Result<(St, Option<KV>), ArgminError> {
        self.inner.init(problem, state)
    }
    fn next_iter(&mut self, problem: &mut Problem<O>, state: St) -> Result<(St, Option<KV>), ArgminError> {
        self.inner.next_iter(problem, state)
    }
    fn terminate_internal(&mut self, state: &St) -> argmin::core::TerminationStatus {
        <Ls as Solver<O, St>>::terminate_internal(&mut self.inner, state)
    }
    fn terminate(&mut self, state: &St) -> argmin::core::TerminationStatus {
        <Ls as Solver<O, St>>::terminate(&mut self.inner, state)
    }
}
