"""emcee 3's ``EnsembleSampler`` on climcal's engine.

What runs where: when every move is built in, the whole loop runs in Rust
(``climcal._lib.EmceeEngine``, driven from ``_engine_loop``): the choice of a
move of a mixture, the split into sets, the proposals, their
Metropolis–Hastings factors, the acceptance draws, the moves' tuning state and
the kept rows of every ``thin_by``-th step (positions, log-probabilities,
acceptance masks, blobs as bytes), one call per chunk of ``_CHUNK`` kept steps
(``run_mcmc``) or per yielded state (``sample()``), each stored with one
``backend._save_steps``. Rust calls back into Python once per set of proposals
(a half-ensemble for the stretch move) for their log-probabilities — one call
of ``log_prob_fn`` with ``vectorize=True``, otherwise one per walker through
``pool.map`` or ``map``. The loop runs step by step in Python only for moves
written in Python, object blobs, backends other than ``Backend``/``HDFBackend``
and the deprecated ``thin=``. This module is the layer emcee users see:
argument checks, the generator, blobs (any dtype, kept as numpy arrays), the
backends and the random state.

The random state is a numpy ``RandomState`` seeded, as emcee's, from numpy's
global generator (or from the backend when it resumes one); each step draws
one 64-bit seed from it for the Rust step, so ``random_state`` (stored with
every step, also in HDF5 files) fixes the rest of the run exactly, and the
moves' tuning state (``backend.move_state``) is stored with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from itertools import count

import numpy as np

from .backends import Backend, HDFBackend
from .model import Model
from ._engine import NO_BLOBS_AT_START, BlobBytes, draw_seeds, engine_specs, engine_step, make_engine
from .moves import StretchMove
from .moves.builtin import as_move
from .pbar import get_progress_bar
from .state import State
from .utils import deprecated, deprecation_warning

try:
    from numpy.exceptions import VisibleDeprecationWarning
except ImportError:  # numpy < 1.25
    from numpy import VisibleDeprecationWarning

__all__ = ["EnsembleSampler", "walkers_independent", "ndarray_to_list_of_dicts"]

#: Kept steps per engine call in ``run_mcmc`` (each chunk one ``_save_steps``).
_CHUNK = 256


class EnsembleSampler:
    """An affine-invariant ensemble MCMC sampler with emcee 3's interface.

    Parameters
    ----------
    nwalkers : int
        Walkers in the ensemble.
    ndim : int
        Dimension of the parameter space.
    log_prob_fn : callable
        ``log_prob_fn(p, *args, **kwargs)``: the log-probability of ``p`` (and
        optionally blobs: return ``(log_prob, blob1, ...)``).
    pool : optional
        An object with a ``map`` method (``multiprocessing.Pool``, schwimmbad,
        ...) to evaluate the walkers of a set in parallel.
    moves : Move, list of moves or list of ``(move, weight)``, optional
        Default ``StretchMove()``.
    args, kwargs : optional
        Extra arguments of ``log_prob_fn``.
    backend : Backend or HDFBackend, optional
        Default: in memory.
    vectorize : bool, default False
        ``log_prob_fn`` takes an array ``(n, ndim)`` and returns ``n`` values
        (``pool`` is then not used).
    blobs_dtype : numpy dtype, optional
        Of the blobs (default: guessed from the first blobs).
    parameter_names : list of str or dict of str to int or list of int, optional
        Then ``log_prob_fn`` gets a dict of named parameters.
    """

    def __init__(self, nwalkers, ndim, log_prob_fn, pool=None, moves=None, args=None, kwargs=None, backend=None,
                 vectorize=False, blobs_dtype=None, parameter_names=None, a=None, postargs=None, threads=None,
                 live_dangerously=None, runtime_sortingfn=None):
        if a is not None:
            deprecation_warning("The 'a' argument is deprecated, use 'moves' instead")
        if threads is not None:
            deprecation_warning("The 'threads' argument is deprecated")
        if runtime_sortingfn is not None:
            deprecation_warning("The 'runtime_sortingfn' argument is deprecated")
        if live_dangerously is not None:
            deprecation_warning("The 'live_dangerously' argument is deprecated")

        if moves is None:
            self._moves, self._weights = [StretchMove()], [1.0]
        elif isinstance(moves, Iterable):
            try:
                self._moves, self._weights = zip(*moves)
            except TypeError:
                self._moves, self._weights = moves, np.ones(len(moves))
        else:
            self._moves, self._weights = [moves], [1.0]
        self._moves = [as_move(m) for m in self._moves]
        self._weights = np.atleast_1d(self._weights).astype(float)
        self._weights /= np.sum(self._weights)
        # The Rust loop of the built-in moves (made at the first run), and the
        # move state it starts from (a stored run's, or a pickled sampler's).
        self._engine = self._engine_specs = None
        self._engine_state = None

        self.pool = pool
        self.vectorize = vectorize
        self.blobs_dtype = blobs_dtype
        self.ndim = ndim
        self.nwalkers = nwalkers
        self.backend = Backend() if backend is None else backend

        if not self.backend.initialized:
            self._previous_state = None
            self.reset()
            rstate = np.random.get_state()
        else:
            if self.backend.shape != (self.nwalkers, self.ndim):
                raise ValueError(
                    f"the shape of the backend ({self.backend.shape}) is incompatible with the shape of the "
                    f"sampler ({(self.nwalkers, self.ndim)})"
                )
            rstate = self.backend.random_state
            if rstate is None:
                rstate = np.random.get_state()
            self._previous_state = self.get_last_sample() if self.backend.iteration > 0 else None
            # The moves' tuning of the stored run (DIME's proposal, ...): taken
            # when the run had these moves, so a resume continues exactly.
            self._engine_state = getattr(self.backend, "move_state", None)
        # Our own generator, set from numpy's global one without advancing it.
        self._random = np.random.mtrand.RandomState()
        self._random.set_state(rstate)

        self.log_prob_fn = _FunctionWrapper(log_prob_fn, args, kwargs)

        self.params_are_named = parameter_names is not None
        if self.params_are_named:
            self.parameter_names = _check_names(parameter_names, ndim, vectorize)

    @property
    def random_state(self):
        """The state of the sampler's numpy ``RandomState`` (settable; a value
        that is not a valid state is ignored, as in emcee)."""
        return self._random.get_state()

    @random_state.setter
    def random_state(self, state):
        try:
            self._random.set_state(state)
        except Exception:  # noqa: BLE001 - emcee's contract: fail silently
            pass

    @property
    def iteration(self):
        """Steps stored in the backend."""
        return self.backend.iteration

    def reset(self):
        """Forget the stored chain (the backend starts again)."""
        self.backend.reset(self.nwalkers, self.ndim)

    def __getstate__(self):
        d = dict(self.__dict__)
        d["pool"] = None  # pools do not pickle
        if self._engine is not None:  # the native engine pickles as its state
            d["_engine_state"] = self._engine.state_json()
        d["_engine"] = d["_engine_specs"] = None
        return d

    def _get_engine(self):
        """The Rust loop of the moves (None when a move runs in Python). Made
        at the first run, and again when a move's parameters changed since;
        it takes the tuning state it is given (a stored run's, a pickled
        sampler's, the previous engine's) when that belongs to these moves."""
        specs = engine_specs(self._moves, self._weights)
        if specs is None:
            return None
        if self._engine is None or self._engine_specs != specs:
            given = self._engine_state if self._engine is None else self._engine.state_json()
            self._engine = make_engine(specs)
            self._engine_specs = specs
            if given is not None:
                self._engine.set_state_json(given)
            self._engine_state = None
        return self._engine

    def sample(self, initial_state, log_prob0=None, rstate0=None, blobs0=None, iterations=1, tune=False,
               skip_initial_state_check=False, thin_by=1, thin=None, store=True, progress=False,
               progress_kwargs=None):
        """Advance the chain: a generator yielding the :class:`State` every ``thin_by`` steps.

        Parameters
        ----------
        initial_state : State or ndarray (nwalkers, ndim)
        iterations : int or None, default 1
            States to yield (``None``: for ever, needs ``store=False``).
        tune : bool, default False
            Let moves with a ``tune`` method adapt.
        skip_initial_state_check : bool, default False
            Skip the check that the initial walkers are linearly independent.
        thin_by : int, default 1
            Store and yield every ``thin_by``-th step (``iterations·thin_by`` steps in all).
        thin : int, optional
            Deprecated: store every ``thin``-th of ``iterations`` steps.
        store : bool, default True
            Store the steps in the backend.
        progress : bool or str, default False
            A tqdm progress bar (``"notebook"`` for Jupyter).
        progress_kwargs : dict, optional
            Passed to tqdm.
        """
        yield from self._sample(initial_state, log_prob0, rstate0, blobs0, iterations, tune,
                                skip_initial_state_check, thin_by, thin, store, progress, progress_kwargs, True)

    def _sample(self, initial_state, log_prob0, rstate0, blobs0, iterations, tune, skip_initial_state_check,
                thin_by, thin, store, progress, progress_kwargs, observed):
        """:meth:`sample`'s loop. ``observed=False`` (``run_mcmc``, where no one
        sees the intermediate states): the random state (~50 µs to read from
        numpy) is read only where it is kept: the last step, and each step an
        HDFBackend of this package is about to write."""
        if iterations is None and store:
            raise ValueError("'store' must be False when 'iterations' is None")
        state = State(initial_state, copy=True)
        shape = np.shape(state.coords)
        if shape != (self.nwalkers, self.ndim):
            raise ValueError(f"incompatible input dimensions {shape}")
        if (not skip_initial_state_check) and (not walkers_independent(state.coords)):
            raise ValueError(
                "Initial state has a large condition number. Make sure that your walkers are linearly "
                "independent for the best performance"
            )
        if rstate0 is not None:
            deprecation_warning("The 'rstate0' argument is deprecated, use a 'State' instead")
            state.random_state = rstate0
        self.random_state = state.random_state
        if log_prob0 is not None:
            deprecation_warning("The 'log_prob0' argument is deprecated, use a 'State' instead")
            state.log_prob = log_prob0
        if blobs0 is not None:
            deprecation_warning("The 'blobs0' argument is deprecated, use a 'State' instead")
            state.blobs = blobs0
        if state.log_prob is None:
            state.log_prob, state.blobs = self.compute_log_prob(state.coords)
        if np.shape(state.log_prob) != (self.nwalkers,):
            raise ValueError("incompatible input dimensions")
        if np.any(np.isnan(state.log_prob)):
            raise ValueError("The initial log_prob was NaN")

        if thin is not None:
            deprecation_warning("The 'thin' argument is deprecated. Use 'thin_by' instead.")
            thin = _check_thin(thin)
            yield_step, checkpoint_step = 1, thin
            if store:
                self.backend.grow(iterations // checkpoint_step, state.blobs)
        else:
            thin_by = _check_thin(thin_by)
            yield_step = checkpoint_step = thin_by
            if store:
                self.backend.grow(iterations, state.blobs)

        map_fn = map if self.pool is None else self.pool.map
        model = Model(self.log_prob_fn, self.compute_log_prob, map_fn, self._random)
        moves, weights = self._moves, self._weights
        single = len(moves) == 1
        total = None if iterations is None else iterations * yield_step
        known = type(self.backend) in (Backend, HDFBackend)
        every_step = not known
        flush_due = getattr(self.backend, "_flush_due", None)
        engine = self._get_engine()
        if engine is not None:
            for m in moves:
                m._check_walkers_for(self.nwalkers, self.ndim)
        # The whole loop in Rust, unless something needs Python at every step.
        on_engine = engine is not None and thin is None and (known or not store) and BlobBytes.applies(state.blobs)
        try:
            with get_progress_bar(progress, total, **(progress_kwargs or {})) as pbar:
                if on_engine:
                    yield from self._engine_loop(engine, state, iterations, thin_by, store, observed, pbar)
                    return
                i = 0
                for _ in count() if iterations is None else range(iterations):
                    for _ in range(yield_step):
                        if engine is not None:  # built-in moves, stepped one by one
                            move = None
                            state, accepted = self._engine_step(engine, state)
                        else:
                            move = moves[0] if single else moves[self._random.choice(len(moves), p=weights)]
                            state, accepted = move.propose(model, state)
                        saving = store and (i + 1) % checkpoint_step == 0
                        if (
                            every_step
                            or (observed and (i + 1) % yield_step == 0)
                            or i + 1 == total
                            or (saving and flush_due is not None and flush_due())
                        ):
                            state.random_state = self.random_state
                        else:
                            state.random_state = None
                        if tune and move is not None:
                            move.tune(state, accepted)
                        if saving and engine is not None and known:
                            # Built-in moves on this loop (object blobs, thin=): the
                            # step is stored with the moves' state, as the engine's loop does.
                            blobs = None if state.blobs is None else np.array(state.blobs, copy=True)[None]
                            self.backend._save_steps(np.array(state.coords, copy=True)[None],
                                                     np.array(state.log_prob, copy=True)[None],
                                                     np.asarray(accepted, dtype=bool).copy()[None], blobs,
                                                     state.random_state, engine.state_json())
                        elif saving:
                            self.backend.save_step(state, accepted)
                        pbar.update(1)
                        i += 1
                    yield state
        finally:
            if state.random_state is None:  # stopped early (an exception, or the generator closed)
                state.random_state = self.random_state
                if known and store:
                    self.backend._patch_random_state(state.random_state)
            flush = getattr(self.backend, "flush", None)
            if flush is not None:
                flush()

    def _engine_loop(self, engine, state, iterations, thin_by, store, observed, pbar):
        """The steps on the Rust engine: one call per yielded state
        (``observed``, i.e. ``sample()``: ``thin_by`` steps) or per chunk of
        ``_CHUNK`` kept steps (``run_mcmc``), each stored with one
        ``_save_steps``; ``state`` is updated in place. The random state is read
        once per call; a call that fails (an exception in the log-probability,
        ``KeyboardInterrupt``) leaves the random state and the moves' tuning as
        they were after the last stored step."""
        blobs = None if state.blobs is None else np.asarray(state.blobs)
        layout = None if blobs is None else BlobBytes(blobs)
        compute = self.compute_log_prob

        def evaluate(q, idx):
            lp, b = compute(q)
            lp = np.ascontiguousarray(lp, dtype=np.float64)
            if b is None:
                return lp, None
            if layout is None:
                raise ValueError(NO_BLOBS_AT_START)
            return lp, layout.to_bytes(b, len(q))

        rs = self.random_state
        state.random_state = rs
        per_call = 1 if observed else _CHUNK
        done = 0
        while iterations is None or done < iterations:
            k = per_call if iterations is None else min(per_call, iterations - done)
            seeds = draw_seeds(self._random, k * thin_by)
            raw = None if layout is None else layout.to_bytes(state.blobs, self.nwalkers)
            try:
                chain, lps, acc, kept, coords, log_prob, raw = engine.run(
                    seeds,
                    np.ascontiguousarray(state.coords, dtype=np.float64),
                    np.ascontiguousarray(state.log_prob, dtype=np.float64),
                    raw,
                    evaluate,
                    thin_by,
                )
            except BaseException:
                self._random.set_state(rs)  # as after the last stored step
                raise
            rs = self.random_state
            state.coords, state.log_prob, state.random_state = coords, log_prob, rs
            if layout is not None:
                state.blobs = layout.from_bytes(raw)
            if store:
                self.backend._save_steps(chain, lps, acc, None if kept is None else layout.from_bytes(kept), rs,
                                         engine.state_json())
            pbar.update(k * thin_by)
            done += k
            if observed:
                yield state
        if not observed and done > 0:
            yield state

    def _engine_step(self, engine, state):
        """One step on the engine for the Python loop (blobs, e.g. objects,
        kept in Python): the same step as the engine's loop makes."""
        return engine_step(engine, state, self._random, self.compute_log_prob)

    def run_mcmc(self, initial_state, nsteps, **kwargs):
        """Run ``nsteps`` of :meth:`sample` and return the last :class:`State`
        (``initial_state=None`` continues from the end of the previous run)."""
        if initial_state is None:
            if self._previous_state is None:
                raise ValueError("Cannot have `initial_state=None` if run_mcmc has never been called.")
            initial_state = self._previous_state
        results = None
        opts = dict(log_prob0=None, rstate0=None, blobs0=None, tune=False, skip_initial_state_check=False,
                    thin_by=1, thin=None, store=True, progress=False, progress_kwargs=None)
        unknown = set(kwargs) - set(opts)
        if unknown:
            raise TypeError(f"run_mcmc() got unexpected keyword argument(s) {sorted(unknown)}")
        opts.update(kwargs)
        for results in self._sample(initial_state, iterations=nsteps, observed=False, **opts):
            pass
        self._previous_state = results
        return results

    def compute_log_prob(self, coords):
        """Log-probabilities (and blobs, or None) of the rows of ``coords``."""
        p = coords
        if not np.isfinite(p).all():
            if np.any(np.isinf(p)):
                raise ValueError("At least one parameter value was infinite")
            raise ValueError("At least one parameter value was NaN")
        if self.params_are_named:
            p = ndarray_to_list_of_dicts(p, self.parameter_names)
        if self.vectorize:
            results = self.log_prob_fn(p)
            if isinstance(results, np.ndarray) and results.ndim == 1 and results.dtype.kind in "fiu":
                log_prob = results.astype(np.float64)
                if np.isnan(log_prob).any():
                    raise ValueError("Probability function returned NaN")
                return log_prob, None
        else:
            results = list((map if self.pool is None else self.pool.map)(self.log_prob_fn, p))
        log_prob, blob = _split_results(results)
        if blob is not None:
            blob = self._blob_array(blob)
        if np.isnan(log_prob).any():
            raise ValueError("Probability function returned NaN")
        return log_prob, blob

    def _blob_array(self, blob):
        if self.blobs_dtype is not None:
            dt = self.blobs_dtype
        else:
            try:
                with warnings.catch_warnings(record=True):
                    warnings.simplefilter("error", VisibleDeprecationWarning)
                    try:
                        dt = np.atleast_1d(blob[0]).dtype
                    except Warning:
                        deprecation_warning(
                            "You have provided blobs that are not all the same shape or size. This means they must "
                            "be placed in an object array. Numpy has deprecated this automatic detection, so please "
                            "specify blobs_dtype=np.dtype('object')"
                        )
                        dt = np.dtype("object")
            except ValueError:
                dt = np.dtype("object")
            if dt.kind in "US":
                dt = np.dtype("object")  # strings in object arrays: no truncation
        blob = np.array(blob, dtype=dt)
        shape = blob.shape[1:]
        if len(shape):
            axes = tuple(i + 1 for i, n in enumerate(shape) if n == 1)
            if axes:
                blob = np.squeeze(blob, axes)
        return blob

    @property
    def acceptance_fraction(self):
        """Fraction of accepted proposals per walker."""
        return self.backend.accepted / float(self.backend.iteration)

    @property
    @deprecated("get_chain()")
    def chain(self):
        return np.swapaxes(self.get_chain(), 0, 1)

    @property
    @deprecated("get_chain(flat=True)")
    def flatchain(self):
        return self.get_chain(flat=True)

    @property
    @deprecated("get_log_prob()")
    def lnprobability(self):
        return np.swapaxes(self.get_log_prob(), 0, 1)

    @property
    @deprecated("get_log_prob(flat=True)")
    def flatlnprobability(self):
        return self.get_log_prob(flat=True)

    @property
    @deprecated("get_blobs()")
    def blobs(self):
        return self.get_blobs()

    @property
    @deprecated("get_blobs(flat=True)")
    def flatblobs(self):
        return self.get_blobs(flat=True)

    @property
    @deprecated("get_autocorr_time")
    def acor(self):
        return self.get_autocorr_time()

    def get_chain(self, **kwargs):
        return self.get_value("chain", **kwargs)

    def get_blobs(self, **kwargs):
        return self.get_value("blobs", **kwargs)

    def get_log_prob(self, **kwargs):
        return self.get_value("log_prob", **kwargs)

    get_chain.__doc__ = Backend.get_chain.__doc__
    get_blobs.__doc__ = Backend.get_blobs.__doc__
    get_log_prob.__doc__ = Backend.get_log_prob.__doc__

    def get_last_sample(self, **kwargs):
        """The last stored :class:`State`."""
        return self.backend.get_last_sample()

    def get_value(self, name, **kwargs):
        return self.backend.get_value(name, **kwargs)

    def get_autocorr_time(self, **kwargs):
        return self.backend.get_autocorr_time(**kwargs)

    get_autocorr_time.__doc__ = Backend.get_autocorr_time.__doc__


def _check_thin(value):
    v = int(value)
    if v <= 0:
        raise ValueError("Invalid thinning argument")
    return v


def _check_names(names, ndim, vectorize):
    assert isinstance(names, (list, dict)), "parameter_names must be a list or a dict"
    assert not vectorize, "named parameters with vectorization unsupported for now"
    seen, dupes = set(), set()
    for n in names:
        (dupes if n in seen else seen).add(n)
    assert not dupes, f"duplicate parameters: {dupes}"
    if isinstance(names, list):
        assert len(names) == ndim, "name all parameters or set `parameter_names` to `None`"
        names = {n: i for i, n in enumerate(names)}
    assert len(names) <= ndim, "too many names"
    indices = set()
    for v in names.values():
        indices.update(v if isinstance(v, list) else [v])
    assert indices == set(range(ndim)), f"not all values appear -- set should be 0 to {ndim - 1}"
    return names


def _split_results(results):
    """``(log_prob array, list of blob tuples or None)`` from ``log_prob_fn``'s returns."""
    try:
        blob = [r[1:] for r in results if len(r) > 1]
        if not blob:
            raise IndexError
        log_prob = np.array([_scalar(r[0]) for r in results])
    except (IndexError, TypeError):
        log_prob = np.array([_scalar(r) for r in results])
        blob = None
    return log_prob, blob


def _scalar(v):
    if np.isscalar(v):
        return float(v)
    try:
        return float(np.asarray(v).item())
    except (TypeError, ValueError) as e:
        raise ValueError("log_prob_fn should return scalar") from e


class _FunctionWrapper:
    """``f(x, *args, **kwargs)`` as a picklable one-argument callable."""

    def __init__(self, f, args, kwargs):
        self.f = f
        self.args = [] if args is None else args
        self.kwargs = {} if kwargs is None else kwargs

    def __call__(self, x):
        try:
            return self.f(x, *self.args, **self.kwargs)
        except Exception:
            import traceback

            print("emcee: Exception while calling your likelihood function:")
            print("  params:", x)
            print("  args:", self.args)
            print("  kwargs:", self.kwargs)
            print("  exception:")
            traceback.print_exc()
            raise


def walkers_independent(coords):
    """Whether the walkers span the space: finite, no constant coordinate, and
    the condition number of the centred, column-scaled positions at most 1e8."""
    if not np.all(np.isfinite(coords)):
        return False
    c = coords - np.mean(coords, axis=0)[None, :]
    colmax = np.amax(np.abs(c), axis=0)
    if np.any(colmax == 0):
        return False
    c = c / colmax
    c = c / np.sqrt(np.sum(c**2, axis=0))
    return bool(np.linalg.cond(c.astype(float)) <= 1e8)


def ndarray_to_list_of_dicts(x, key_map):
    """Rows of ``x`` as dicts ``{name: x[row, index]}`` (an index may be a list)."""
    return [{k: row[v] for k, v in key_map.items()} for row in x]
