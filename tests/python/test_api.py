"""The building blocks: distributions, ParameterSet, Target, likelihood, ModelRunner,
and the errors bad input gets."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import climcal
from conftest import FORCING, TIMES, one_box_python


def test_distributions_match_scipy():
    x = np.linspace(0.1, 5.0, 7)
    cases = [
        (climcal.Uniform(0.0, 4.0), stats.uniform(0.0, 4.0)),
        (climcal.Normal(1.0, 2.0), stats.norm(1.0, 2.0)),
        (climcal.LogNormal(0.5, 0.7), stats.lognorm(0.7, scale=math.exp(0.5))),
        (climcal.TruncatedNormal(1.0, 2.0, 0.0, 3.0), stats.truncnorm(-0.5, 1.0, loc=1.0, scale=2.0)),
    ]
    for d, ref in cases:
        np.testing.assert_allclose(d.ln_pdf(x), ref.logpdf(x), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(d.cdf(x), ref.cdf(x), rtol=1e-9, atol=1e-12)
        assert d.ln_pdf(float(x[0])) == pytest.approx(ref.logpdf(x[0]), rel=1e-10)
    b = climcal.Bound(climcal.Normal(0.0, 1.0), lower=0.0)
    assert b.bounds == (0.0, math.inf)
    assert b.ln_pdf(1.0) == pytest.approx(stats.halfnorm.logpdf(1.0), rel=1e-10)
    assert b.ln_pdf(-1.0) == -math.inf
    assert isinstance(b, climcal.Distribution)


def test_distribution_sample_is_seeded_and_spec_round_trips():
    d = climcal.TruncatedNormal(3.0, 1.0, lower=1.0, upper=6.0)
    a, b = d.sample(1000, seed=3), d.sample(1000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 1.0 and a.max() <= 6.0
    assert d.spec == {"dist": "truncated_normal", "mean": 3.0, "std": 1.0, "lower": 1.0, "upper": 6.0}
    e = climcal.Distribution.from_spec(d.spec)
    assert e == d and type(e) is climcal.TruncatedNormal
    assert pickle.loads(pickle.dumps(d)) == d
    assert repr(climcal.Normal(3.0, 0.5)) == "Normal(3, 0.5)"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: climcal.Normal(0.0, 0.0), ["Normal", "σ"]),
        (lambda: climcal.Normal(0.0, -1.0), ["Normal", "> 0"]),
        (lambda: climcal.Uniform(2.0, 1.0), ["lower (2) must be < upper (1)"]),
        (lambda: climcal.LogNormal(0.0, 0.0), ["LogNormal", "sigma"]),
        (lambda: climcal.TruncatedNormal(0.0, 1.0, 3.0, -3.0), ["TruncatedNormal", "lower"]),
        (lambda: climcal.Bound(climcal.Normal(0, 1), lower=5.0, upper=1.0), ["Bound", "lower"]),
        (lambda: climcal.Distribution.from_spec({"dist": "gamma", "k": 1}), ["invalid prior specification", "uniform, normal"]),
    ],
)
def test_bad_distribution_parameters_raise_value_error(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)


def test_bad_distribution_types_raise_type_error():
    with pytest.raises(TypeError):
        climcal.Normal("a", 1.0)
    with pytest.raises(TypeError, match="expected a climcal distribution"):
        climcal.Bound(3.0, lower=0.0)


def test_parameter_set_from_dict_and_fluent():
    p = climcal.ParameterSet({"a": climcal.Normal(0.0, 1.0), "b": {"dist": "uniform", "lower": 0, "upper": 2}})
    p.add("c", climcal.LogNormal(0.0, 1.0), transform="log", unit="K")
    p2 = p.add("d", {"prior": climcal.Uniform(0, 1), "transform": "logit"})
    assert p2 is p
    assert p.names == ["a", "b", "c", "d"]
    assert p.bounds == {"a": (-math.inf, math.inf), "b": (0.0, 2.0), "c": (0.0, math.inf), "d": (0.0, 1.0)}
    assert p.transforms["c"] == "log" and p.units["c"] == "K"
    assert len(p) == 4 and "c" in p and "z" not in p
    s = p.sample(500, seed=1)
    assert s.shape == (500, 4)
    np.testing.assert_array_equal(s, p.sample(500, seed=1))
    assert (s[:, 1] >= 0).all() and (s[:, 1] <= 2).all()
    theta = np.array([0.5, 1.0, 2.0, 0.3])
    expect = stats.norm.logpdf(0.5) + math.log(0.5) + stats.lognorm(1.0).logpdf(2.0) + 0.0
    assert p.ln_prior(theta) == pytest.approx(expect, rel=1e-12)
    assert p.ln_prior(dict(zip(p.names, theta))) == pytest.approx(expect, rel=1e-12)
    np.testing.assert_allclose(p.ln_prior(np.vstack([theta, theta])), [expect, expect], rtol=1e-12)
    assert p.ln_prior([0.5, 3.0, 2.0, 0.3]) == -math.inf
    q = pickle.loads(pickle.dumps(p))
    assert q.names == p.names and q.ln_prior(theta) == p.ln_prior(theta)


def test_parameter_set_bad_input():
    with pytest.raises(ValueError, match="'a'.*defined twice"):
        climcal.ParameterSet({"a": climcal.Normal(0, 1)}).add("a", climcal.Normal(0, 1))
    with pytest.raises(ValueError, match="log.*x > 0"):
        climcal.ParameterSet().add("x", climcal.Normal(0, 1), transform="log")
    with pytest.raises(ValueError, match="unknown transform 'sqrt'"):
        climcal.ParameterSet().add("x", climcal.Normal(0, 1), transform="sqrt")
    with pytest.raises(TypeError, match="expected a dict"):
        climcal.ParameterSet([("a", climcal.Normal(0, 1))])
    with pytest.raises(TypeError, match="parameter 'a'"):
        climcal.ParameterSet({"a": 3.0})
    with pytest.raises(ValueError, match="expected 2 parameter values"):
        climcal.ParameterSet({"a": climcal.Normal(0, 1), "b": climcal.Normal(0, 1)}).ln_prior([1.0])


def test_target_fluent_and_reference_period():
    t = climcal.Target().add_variable("tas", [1850, 1851, 1852, 1853], [1.0, 2.0, 3.0, 4.0], [0.1] * 4)
    t2 = t.with_reference_period(1850, 1851)
    assert t2 is t and isinstance(t, climcal.Target)
    np.testing.assert_allclose(t.get("tas")["values"], [-0.5, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(t.get("tas")["raw_values"], [1, 2, 3, 4])
    assert t.variables == ["tas"] and t.n_points == 4 and t.reference_period == (1850.0, 1851.0)


@pytest.mark.parametrize(
    "args, words",
    [
        (("tas", [1, 2], [0.1], [0.1, 0.1]), ["length mismatch", "times vs values"]),
        (("tas", [1, 2], [0.1, float("nan")], [0.1, 0.1]), ["'tas'", "NaN"]),
        (("tas", [1, 2], [0.1, 0.2], [0.1, 0.0]), ["'tas'", "uncertaint", "> 0"]),
        (("tas", [1, 2], [0.1, 0.2], [0.1, -1.0]), ["uncertaint"]),
        (("tas", [2, 1], [0.1, 0.2], [0.1, 0.1]), ["increase"]),
        (("tas", [[1, 2]], [0.1, 0.2], [0.1, 0.1]), ["1-D"]),
        (("tas", ["a", "b"], [0.1, 0.2], [0.1, 0.1]), ["times", "floats"]),
    ],
)
def test_target_bad_input(args, words):
    with pytest.raises(ValueError) as e:
        climcal.Target().add_variable(*args)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_target_from_dataframe():
    df = pd.DataFrame(
        {"year": [1850, 1851, 1852], "gmst": [0.0, 0.2, np.nan], "gmst_sd": [0.1, 0.1, 0.1]}
    )
    t = climcal.Target.from_dataframe(df, time_col="year", variables={"tas": "gmst"}, uncertainty_col="gmst_sd")
    assert isinstance(t, climcal.Target)
    np.testing.assert_allclose(t.get("tas")["times"], [1850, 1851])  # NaN rows dropped
    df2 = pd.DataFrame({"gmst": [1.0, 2.0, 4.0]}, index=[1850.0, 1851.0, 1852.0])
    t = climcal.Target.from_dataframe(df2, relative_error=0.5, sigma_floor=0.1, reference_period=(1850, 1851))
    assert t.variables == ["gmst"]
    np.testing.assert_allclose(t.get("gmst")["uncertainties"], [0.5, 1.0, 2.0])
    np.testing.assert_allclose(t.get("gmst")["values"], [-0.5, 0.5, 2.5])
    with pytest.raises(ValueError, match="exactly one of uncertainty_col"):
        climcal.Target.from_dataframe(df, time_col="year")
    with pytest.raises(ValueError, match="no column 'when'"):
        climcal.Target.from_dataframe(df, time_col="when", uncertainty_col="gmst_sd")
    with pytest.raises(TypeError, match="DataFrame"):
        climcal.Target.from_dataframe({"a": [1]}, uncertainty_col="x")


def test_from_scmdata_without_scmdata_says_how_to_install():
    try:
        import scmdata  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install 'climcal\\[scmdata\\]'"):
            climcal.Target.from_scmdata(object())
    else:
        pytest.skip("scmdata is installed")


def test_likelihood():
    assert climcal.GaussianLikelihood().relative_error == 0.0
    assert climcal.GaussianLikelihood(relative_error=0.05).relative_error == 0.05
    with pytest.raises(ValueError, match="relative_error must be finite and >= 0"):
        climcal.GaussianLikelihood(relative_error=-0.1)


def test_builtin_runner_matches_python_model():
    r = climcal.ModelRunner("one_box")
    assert "one_box" in climcal.ModelRunner.builtin_names()
    assert r.parameters == ["lambda", "heat_capacity"] and r.output_variables == ["tas"]
    t, out = r.run({"lambda": 1.1, "heat_capacity": 7.0})
    np.testing.assert_array_equal(t, TIMES)
    np.testing.assert_array_equal(out["tas"], one_box_python({"lambda": 1.1, "heat_capacity": 7.0})["tas"])
    r2 = climcal.ModelRunner("one_box", times=TIMES[:10], forcing=FORCING[:10] * 2)
    assert len(r2.run([1.0, 8.0])[0]) == 10


def test_runner_bad_input():
    with pytest.raises(ValueError, match="unknown model 'nope'.*one_box"):
        climcal.ModelRunner("nope")
    with pytest.raises(ValueError, match="options.*unknown field"):
        climcal.ModelRunner("one_box", colour="red")
    with pytest.raises(ValueError, match="times vs forcing"):
        climcal.ModelRunner("one_box", times=[1.0, 2.0, 3.0], forcing=[0.0, 1.0])
    with pytest.raises(TypeError, match="exactly one of model"):
        climcal.ModelRunner()
    with pytest.raises(TypeError, match="output_variables"):
        climcal.ModelRunner(model_factory=one_box_python)
    with pytest.raises(TypeError, match="callable"):
        climcal.ModelRunner(model_factory=3, output_variables=["tas"])
    with pytest.raises(TypeError, match="built-in model"):
        climcal.ModelRunner(3.0)


def test_python_runner_output_forms():
    def as_df(p):
        return pd.DataFrame({"tas": one_box_python(p)["tas"]}, index=TIMES)

    def as_tuple(p):
        return TIMES, one_box_python(p)

    def as_dict_with_time(p):
        return {"time": TIMES, **one_box_python(p)}

    ref = one_box_python({"lambda": 1.0, "heat_capacity": 5.0})["tas"]
    for f in (as_df, as_tuple, as_dict_with_time):
        r = climcal.ModelRunner(model_factory=f, output_variables=["tas"])
        t, out = r.run({"lambda": 1.0, "heat_capacity": 5.0})
        np.testing.assert_array_equal(t, TIMES)
        np.testing.assert_array_equal(out["tas"], ref)
    r = climcal.ModelRunner(model_factory=one_box_python, output_variables=["tas"], times=TIMES)
    np.testing.assert_array_equal(r.run({"lambda": 1.0, "heat_capacity": 5.0})[1]["tas"], ref)
    bad = climcal.ModelRunner(model_factory=one_box_python, output_variables=["ohc"], times=TIMES)
    with pytest.raises(RuntimeError, match="no series 'ohc'"):
        bad.run({"lambda": 1.0, "heat_capacity": 5.0})
