"""climcal.moves from Python: every move samples a standard normal through the
Python API, weighted mixtures work, the same seed gives the same chain, a resumed
run continues exactly, and bad settings raise ValueError naming the cause."""

import json

import numpy as np
import pytest

import climcal
from climcal import moves as M


def gauss(x):
    return -0.5 * float(x @ x)


def run(moves, seed=4, steps=1500, n_walkers=32, ndim=2):
    s = climcal.EnsembleSampler(log_prob_fn=gauss, ndim=ndim, n_walkers=n_walkers, seed=seed, moves=moves)
    return s, s.run(s.initialize("ball", center=[0.0] * ndim, radius=1.0), n_steps=steps, progress=False)


ALL = [
    M.StretchMove(),
    M.StretchMove(randomize_split=True, nsplits=4),
    M.WalkMove(),
    M.DEMove(),
    M.DESnookerMove(),
    M.KDEMove(),
    M.KDEMove(bw_method="silverman"),
    M.GaussianMove(0.5),
    M.GaussianMove([0.5, 0.5], mode="sequential", factor=2.0),
    M.GaussianMove(np.diag([0.5, 0.5])),
    M.DIMEMove(),
]


@pytest.mark.parametrize("move", ALL, ids=repr)
def test_each_move_samples_a_normal(move):
    _, c = run(move)
    flat = c.flat_samples(discard=300)
    # N(0, I) in 2-D: 1200 steps × 32 walkers with τ ≤ 40 steps give ≥ 960
    # effective draws, so the Monte-Carlo error of the mean is ≤ 0.032 and of the
    # sd ≤ 0.023; 0.15 is > 4.5 of them (these runs are seeded).
    assert np.all(np.abs(flat.mean(axis=0)) < 0.15), flat.mean(axis=0)
    assert np.all(np.abs(flat.std(axis=0) - 1.0) < 0.15), flat.std(axis=0)
    acc = c.acceptance_fraction
    assert np.all((acc > 0.05) & (acc < 0.95)), acc


def test_mixture_same_seed_same_chain_and_moves_are_reported():
    mix = [(M.DEMove(), 0.8), (M.DESnookerMove(), 0.2)]
    s, a = run(mix, seed=9, steps=200)
    _, b = run(mix, seed=9, steps=200)
    _, c = run(mix, seed=10, steps=200)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    got = json.loads(s._native.moves)
    assert [m["kind"] for m in got] == ["de", "de_snooker"] and [m["weight"] for m in got] == [0.8, 0.2]
    # The default is the stretch move, and moves=StretchMove() is the same chain.
    _, d = run(None, seed=9, steps=100)
    _, e = run(M.StretchMove(), seed=9, steps=100)
    np.testing.assert_array_equal(d.samples, e.samples)


def test_run_in_two_parts_continues_exactly_with_tuning_state():
    mix = [(M.DIMEMove(), 0.5), (M.GaussianMove(0.3, mode="sequential"), 0.5)]
    s1 = climcal.EnsembleSampler(log_prob_fn=gauss, ndim=2, n_walkers=16, seed=5, moves=mix)
    full = s1.run(s1.initialize("ball", center=[0, 0], radius=1.0), n_steps=60, progress=False)
    s2 = climcal.EnsembleSampler(log_prob_fn=gauss, ndim=2, n_walkers=16, seed=5, moves=mix)
    first = s2.run(s2.initialize("ball", center=[0, 0], radius=1.0), n_steps=25, progress=False)
    second = s2.run(n_steps=35, progress=False)
    np.testing.assert_array_equal(np.concatenate([first.samples, second.samples]), full.samples)


def test_bad_moves_raise_value_error_naming_the_cause():
    with pytest.raises(ValueError, match="2 variances for 3 parameters"):
        climcal.EnsembleSampler(log_prob_fn=gauss, ndim=3, n_walkers=16, seed=1, moves=M.GaussianMove([0.5, 0.5]))
    with pytest.raises(ValueError, match="mode"):
        M.GaussianMove(0.5, mode="diagonal")
    with pytest.raises(ValueError, match="factor"):
        M.GaussianMove(0.5, factor=0.5)
    with pytest.raises(ValueError, match="df_proposal_dist"):
        climcal.EnsembleSampler(log_prob_fn=gauss, ndim=2, n_walkers=16, seed=1, moves=M.DIMEMove(df_proposal_dist=2))
    with pytest.raises(TypeError, match="Move"):
        climcal.EnsembleSampler(log_prob_fn=gauss, ndim=2, n_walkers=16, seed=1, moves=["de"])
