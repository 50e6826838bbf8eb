"""Progress of a run: ``ProgressInfo`` for user callbacks, and the tqdm bar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["ProgressInfo"]


@dataclass(frozen=True)
class ProgressInfo:
    """What a progress callback gets after every step of a run.

    Attributes
    ----------
    iteration : int
        Steps taken so far, counting earlier runs of the same state (as
        ``state.iteration``; the row stored at this step has this ``step``).
    total_iterations : int
        ``iteration`` at the end of this run.
    step, n_steps : int
        Steps done in this run, and asked for.
    acceptance_rate : float
        Mean acceptance fraction over all walkers and steps so far.
    mean_log_prob : float
        Mean log-probability of the walkers now.
    evals_per_second : float
        Log-density evaluations per second in this run.
    failures : int
        Failed evaluations so far (model errors or NaN; -inf for those walkers).
    """

    iteration: int
    total_iterations: int
    step: int
    n_steps: int
    acceptance_rate: float
    mean_log_prob: float
    evals_per_second: float
    failures: int


class StopRun(Exception):
    """Raised inside the engine's callback when a user callback returned False."""


def native_callback(user: Callable[[ProgressInfo], object], start_iteration: int):
    """The engine's ``(step, n, acceptance, mean_lp, evals/s, failures)`` callback
    calling ``user(ProgressInfo)``; a ``False`` return stops the run after that step
    (through ``StopRun``, which ``run`` turns back into a normal return)."""

    def callback(step, n, acceptance, mean_lp, evals_per_s, failures):
        info = ProgressInfo(
            iteration=start_iteration + int(step),
            total_iterations=start_iteration + int(n),
            step=int(step),
            n_steps=int(n),
            acceptance_rate=float(acceptance),
            mean_log_prob=float(mean_lp),
            evals_per_second=float(evals_per_s),
            failures=int(failures),
        )
        if user(info) is False:
            raise StopRun()

    return callback


def tqdm_callback(n_steps: int):
    """A tqdm bar with the acceptance fraction and mean log-probability, and the
    engine callback that moves it; ``(bar, callback)``."""
    from tqdm.auto import tqdm

    bar = tqdm(total=int(n_steps), unit="step", leave=True)

    def callback(step, n, acceptance, mean_lp, evals_per_s, failures):
        bar.n = step
        post = {"acc": f"{acceptance:.3f}", "lnp": f"{mean_lp:.4g}"}
        if failures:
            post["fail"] = failures
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    return bar, callback
