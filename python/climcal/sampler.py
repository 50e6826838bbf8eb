"""The affine-invariant ensemble sampler (Goodman & Weare 2010, as in emcee)."""

from __future__ import annotations

import os
import secrets
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from ._ext import native
from .chain import Chain
from .progress import StopRun, native_callback, tqdm_callback
from .runner import ModelRunner

__all__ = ["EnsembleSampler"]


def check_threads(threads) -> int | None:
    """``threads=`` of the sampler and the point estimator: None or an integer >= 1."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(
            f"threads must be a positive integer or None (None: all cores; 1: serial), got {threads!r}"
        )
    return int(threads)


def _failure_warning(failed: int, n_err: int, first: str | None) -> str:
    """The warning after a run whose model failed for ``failed`` walker evaluations."""
    msg = f"{failed} model evaluation(s) failed and counted as log-probability -inf (chain.failures counts them)"
    if n_err:
        msg += f"; {n_err} call(s) of the Python model raised an exception, the first: {first}"
    else:
        msg += "; the model returned NaN or an error (or the log-probability was NaN)"
    return msg


class EnsembleSampler:
    """Affine-invariant ensemble sampler with the stretch move.

    Either a calibration posterior (``parameters``, ``target``, ``runner``,
    ``likelihood``) or, as in emcee, a plain ``log_prob_fn`` of ``ndim`` values.

    Parameters
    ----------
    parameters : ParameterSet
        Priors (and transforms) of the model parameters.
    target : Target
        Observations.
    runner : ModelRunner or str
        The model (a string names a built-in model).
    likelihood : GaussianLikelihood or AR1Likelihood, optional
        Default ``GaussianLikelihood()`` (independent errors, no extra relative
        error). ``AR1Likelihood`` gives AR(1)-correlated residuals; a ρ or σ_extra
        it samples is a parameter of ``parameters`` (with its prior).
    n_walkers : int, optional
        Even and ≥ 2·n_params. Default ``max(2·n_params, 32)``.
    seed : int, optional
        Seed of the per-walker random streams. Default ``None`` draws one (kept in
        ``self.seed``), so the run can be repeated exactly.
    log_prob_fn : callable, optional
        Instead of a posterior: ``f(x: ndarray (ndim,)) -> float`` (or, with
        ``vectorize=True``, ``f(x: ndarray (n, ndim)) -> ndarray (n,)``).
    ndim : int, optional
        Dimension of ``log_prob_fn``'s argument.
    vectorize : bool, default False
        ``log_prob_fn`` takes a whole half-ensemble at once.
    names : list of str, optional
        Parameter names for ``log_prob_fn`` (default ``p0, p1, ...``).
    threads : int, optional
        Threads for built-in Rust models (default: all cores, rayon's global pool;
        ``1`` evaluates serially). Python models are always evaluated serially.
    store_blobs : bool, default False
        Store the model's values at the observation times with every sample (used
        by ``chain.plot.posterior_predictive`` without re-running the model).
    moves : Move, list of Move or list of (Move, weight), optional
        Proposal moves (``climcal.moves``: stretch, walk, DE, DE-snooker, KDE,
        Gaussian, DIME); default the stretch move below.

    Notes
    -----
    Walkers are split into two halves; each moves with the other as complement:
    ``Y = X_j + z (X_k - X_j)``, ``z ~ g(z) ∝ 1/√z`` on ``[1/a, a]`` with ``a = 2``,
    accepted when ``ln u < (n - 1) ln z + ln p(Y) - ln p(X_k)``. Every draw comes
    from the walker's own stream: the same seed gives the same chain bit for bit,
    whatever the number of threads.

    References
    ----------
    Goodman, J. & Weare, J. (2010), Ensemble samplers with affine invariance,
    CAMCoS 5(1), 65-80, https://doi.org/10.2140/camcos.2010.5.65
    """

    def __init__(
        self,
        parameters=None,
        target=None,
        runner: ModelRunner | str | None = None,
        likelihood=None,
        n_walkers: int | None = None,
        seed: int | None = None,
        *,
        log_prob_fn: Callable | None = None,
        ndim: int | None = None,
        vectorize: bool = False,
        names: Sequence[str] | None = None,
        threads: int | None = None,
        store_blobs: bool = False,
        moves=None,
    ) -> None:
        lib = native()
        if seed is None:
            seed = secrets.randbits(63)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise TypeError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = int(seed)
        self.parameters, self.target, self.runner, self.likelihood = parameters, target, runner, likelihood
        if n_walkers is not None and (not isinstance(n_walkers, (int, np.integer)) or n_walkers <= 0):
            raise ValueError(f"n_walkers must be a positive even integer, got {n_walkers!r}")
        if log_prob_fn is not None:
            if parameters is not None or runner is not None:
                raise TypeError("give either log_prob_fn= (with ndim=) or parameters/target/runner, not both")
            if not callable(log_prob_fn):
                raise TypeError(f"log_prob_fn must be callable, got {type(log_prob_fn).__name__}")
            if ndim is None or not isinstance(ndim, (int, np.integer)) or ndim < 1:
                raise ValueError(f"log_prob_fn needs ndim= (a positive integer), got {ndim!r}")
            self._native = lib.EnsembleSampler.from_log_prob(
                log_prob_fn, int(ndim), n_walkers, self.seed, bool(vectorize), None if names is None else list(names)
            )
        else:
            if not isinstance(parameters, lib.ParameterSet):
                raise TypeError(f"parameters must be a climcal.ParameterSet, got {type(parameters).__name__}")
            if not isinstance(target, lib.Target):
                raise TypeError(f"target must be a climcal.Target, got {type(target).__name__}")
            if isinstance(runner, str):
                runner = ModelRunner(runner)
                self.runner = runner
            if not isinstance(runner, ModelRunner):
                raise TypeError(f"runner must be a climcal.ModelRunner or a built-in model name, got {type(runner).__name__}")
            if likelihood is None:
                likelihood = lib.GaussianLikelihood()
                self.likelihood = likelihood
            if not isinstance(likelihood, (lib.GaussianLikelihood, lib.AR1Likelihood)):
                raise TypeError(
                    f"likelihood must be a climcal.GaussianLikelihood or climcal.AR1Likelihood, got {type(likelihood).__name__}"
                )
            self._native = lib.EnsembleSampler(
                parameters,
                target,
                runner._native_for(parameters.names),
                likelihood,
                n_walkers,
                self.seed,
                check_threads(threads),
                bool(store_blobs),
            )
        if moves is not None:
            from .moves import moves_to_json

            self._native.set_moves(moves_to_json(moves))
        self.state = None
        self._chains: list[Chain] = []

    # -- properties -----------------------------------------------------------------
    @property
    def n_walkers(self) -> int:
        """Number of walkers."""
        return self._native.n_walkers

    @property
    def ndim(self) -> int:
        """Number of parameters."""
        return self._native.ndim

    @property
    def names(self) -> list[str]:
        """Parameter names."""
        return list(self._native.names)

    @property
    def chain(self) -> Chain | None:
        """All rows sampled by this sampler so far (runs concatenated), or ``None``."""
        if not self._chains:
            return None
        if len(self._chains) > 1:
            self._chains = [Chain.concatenate(self._chains)]
        return self._chains[0]

    # -- initialise and run --------------------------------------------------------
    def initialize(self, method: str | Any = "prior", *, center=None, radius: float = 1e-3):
        """Place the walkers.

        Parameters
        ----------
        method : {"prior", "ball"} or array-like, default "prior"
            ``"prior"``: independent prior draws; ``"ball"``: a Gaussian ball of
            ``radius`` (in the sampler's space) around ``center`` (physical values);
            an array ``(n_walkers, ndim)``: these positions (physical values).
        center : dict or array-like, optional
            Centre of the ball (a dict by parameter name or values in order).
        radius : float, default 1e-3

        Returns
        -------
        SamplerState
            Also kept as ``self.state``.

        Raises
        ------
        ValueError
            When walkers start with log-probability -inf or NaN (named). With
            ``"prior"`` a walker whose draw fails is drawn again from its own
            stream (deterministically; up to 100 draws) and a warning says how many
            were redrawn.
        """
        if isinstance(method, str):
            if method == "ball":
                if center is None:
                    raise ValueError("initialize('ball') needs center= (a dict by parameter name or values in order)")
                if isinstance(center, dict):
                    missing = [n for n in self.names if n not in center]
                    if missing:
                        raise ValueError(f"initialize('ball'): center lacks {missing}")
                    center = [center[n] for n in self.names]
                state, _ = self._native.initialize("ball", center=np.asarray(center, dtype=float), radius=float(radius))
            else:
                state, redrawn = self._native.initialize(method)
                if redrawn:
                    warnings.warn(
                        f"initialize('prior'): redrew {redrawn} of {self.n_walkers} walkers whose first prior draw "
                        "made the model fail (error or NaN) or fall outside the data; the first error: "
                        f"{self._native.python_errors[1]}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        else:
            pos = np.ascontiguousarray(method, dtype=float)
            state, _ = self._native.initialize("positions", positions=pos)
        self.state = state
        return state

    def run(
        self,
        state=None,
        n_steps: int = 1000,
        *,
        thin: int = 1,
        progress: bool | Callable = True,
        checkpoint_every: int = 100,
        checkpoint_path: str | os.PathLike | None = None,
        overwrite: bool = False,
    ) -> Chain:
        """Run ``n_steps`` steps.

        Parameters
        ----------
        state : SamplerState, optional
            Where to start (updated in place). Default: ``self.state``, or the prior
            when the sampler was not initialised.
        n_steps : int, default 1000
        thin : int, default 1
            Store every ``thin``-th step.
        progress : bool or callable, default True
            ``True``: a tqdm bar with the acceptance fraction and mean
            log-probability. A callable is called after every step with a
            ``climcal.ProgressInfo``; returning ``False`` stops the run after that
            step (checkpoint written, the chain so far returned).
        checkpoint_every : int, default 100
            Write the chain file every this many steps (with ``checkpoint_path``),
            and at the end.
        checkpoint_path : path, optional
            HDF5 chain file (emcee-compatible) written during the run. Default: none
            (the chain stays in memory).
        overwrite : bool, default False
            Replace an existing ``checkpoint_path``. Without it an existing file is
            an error unless this run continues exactly where the file ends.

        Returns
        -------
        Chain
            The rows of this run (``self.chain`` holds all runs).

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C: the run stops after the current step, the checkpoint is
            written, and the exception carries the rows so far as ``.chain``.
        """
        if state is None:
            state = self.state if self.state is not None else self.initialize()
        if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
        if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
            raise ValueError(f"thin must be an integer >= 1, got {thin!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
            raise ValueError(
                f"checkpoint_every must be an integer >= 1 (steps between checkpoints of checkpoint_path), got {checkpoint_every!r}"
            )
        if checkpoint_path is not None:
            checkpoint_path = os.fspath(checkpoint_path)
            if overwrite and os.path.exists(checkpoint_path):
                os.remove(checkpoint_path)
        bar = None
        callback = None
        interval = 0.1
        if callable(progress):
            callback = native_callback(progress, int(state.iteration))
            interval = 0.0  # every step
        elif progress:
            bar, callback = tqdm_callback(n_steps)
        failures_before = int(state.failures)
        errors_before = self._native.python_errors[0]
        try:
            try:
                nat_chain, exc = self._native.run(
                    state, int(n_steps), int(thin), int(checkpoint_every), checkpoint_path, callback, interval
                )
            except ValueError as e:
                if checkpoint_path is not None and "exists and holds another run" in str(e):
                    raise ValueError(f"{e}; or pass overwrite=True to replace it") from None
                raise
        finally:
            if bar is not None:
                bar.close()
        self.state = state
        chain = Chain._from_native(nat_chain, path=checkpoint_path)
        self._chains.append(chain)
        failed = int(state.failures) - failures_before
        n_err, first = self._native.python_errors
        if failed > 0 or n_err > errors_before:
            warnings.warn(_failure_warning(failed, n_err - errors_before, first), RuntimeWarning, stacklevel=2)
        if isinstance(exc, StopRun):
            exc = None
        if exc is not None:
            exc.chain = chain
            if isinstance(exc, KeyboardInterrupt) and checkpoint_path is not None:
                exc.args = (f"run interrupted after step {state.iteration}; chain saved to {checkpoint_path}",)
            raise exc
        return chain

    def run_with_progress(self, *args, **kwargs) -> Chain:
        """``run`` with a callback called after every step with a
        ``climcal.ProgressInfo`` (the design's ``run_with_progress``); returning
        ``False`` stops the run after that step.

        Called as ``run_with_progress(callback, state=None, n_steps=1000, **kw)`` or,
        in the engine's order, ``run_with_progress(state, n_steps, callback, **kw)``;
        ``callback=`` may also be given by keyword. Other keyword arguments as in
        ``run``.
        """
        args = list(args)
        callback = kwargs.pop("callback", None)
        if callback is None:
            found = [i for i, a in enumerate(args) if callable(a) and not isinstance(a, (int, np.integer))]
            if not found:
                raise TypeError("run_with_progress needs a callback: a callable taking a climcal.ProgressInfo")
            callback = args.pop(found[0])
        if not callable(callback):
            raise TypeError(f"run_with_progress: callback must be callable, got {type(callback).__name__}")
        if len(args) > 2:
            raise TypeError("run_with_progress takes a callback, a state and n_steps (and keyword arguments of run)")
        return self.run(*args, progress=callback, **kwargs)

    def resume(self, path: str | os.PathLike, n_steps: int, **kwargs) -> Chain:
        """Continue the run stored in the chain file ``path`` for ``n_steps`` more
        steps, appending to the file.

        The sampler must match the file's run (walkers, parameter names and priors);
        the walkers, log-probabilities and random streams come from the file's last
        checkpoint, so the continued chain is the one an uninterrupted run gives.

        Parameters
        ----------
        path : path
            A chain file written by ``run(checkpoint_path=...)`` or by the CLI.
        n_steps : int
            Steps to add.
        **kwargs
            ``thin`` must match the file's (default: the file's); ``progress`` and
            ``checkpoint_every`` as in ``run``.

        The sampler must describe the same posterior as the file's run: the same
        model, likelihood (``relative_error``) and target data, or ``resume``
        refuses, naming what differs. ``self.state`` (the object ``initialize``
        returned) moves to where the file ends, and on to the end of this run.

        Returns
        -------
        Chain
            The whole chain in the file (all runs), read with ``climcal.load``.
        """
        from .io import load

        path = os.fspath(path)
        if "overwrite" in kwargs or "checkpoint_path" in kwargs:
            raise TypeError("resume(path, ...) appends to path: it takes no overwrite= or checkpoint_path=")
        state = self._native.resume_state(path)
        file_thin = int(load(path).thin)
        thin = kwargs.setdefault("thin", file_thin)
        if thin != file_thin:
            raise ValueError(f"resume: thin={thin} but {path} was written with thin={file_thin}; resume with thin={file_thin} (or leave thin out)")
        # The state object this sampler (and its user) holds moves to where the file
        # ends, so that run(state, ...) after a resume continues the file.
        if self.state is not None and self.state.n_walkers == state.n_walkers and self.state.ndim == state.ndim:
            self.state._assign(state)
            state = self.state
        self.run(state, n_steps, checkpoint_path=path, **kwargs)
        return load(path)

    def __repr__(self) -> str:
        return f"EnsembleSampler(n_walkers={self.n_walkers}, ndim={self.ndim}, seed={self.seed})"
