"""Bad input, Part IV (chapter 18): every public name of ``lib.zeroth`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
Meant to live as ``tests/test_fuzz_zeroth.py``; run alone with
``cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_18.py -q -p no:cacheprovider``.
"""

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, _checked_generator, _gen,
                           assert_finite, draw_f, draw_number, draw_tensor, expect, f_good, small)

from lib import zeroth

ZO_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.bfloat16: BAD,
             torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
ZO_SHAPES = [(), (1,), (3,), (2, 2), (0,)]

BATCH_POOL = {  # f for batched=True: (B, *shape) -> (B,)
    "good": (lambda X: (torch.sin(X) * X * X).reshape(X.shape[0], -1).sum(1), OK),
    "const": (lambda X: torch.ones(X.shape[0], dtype=X.dtype), OK),
    "scalar": (lambda X: X.sum(), BAD),
    "rows": (lambda X: X.reshape(X.shape[0], -1), BAD),  # shape (B, n): fine only when n = 1
    "nan": (lambda X: X.reshape(X.shape[0], -1).sum(1) * math.nan, BAD),
    "list": (lambda X: [0.0] * X.shape[0], BAD),
    "complex": (lambda X: X.reshape(X.shape[0], -1).sum(1) * 1j, BAD),
    "boom": (_boom, BAD),
}


def _zo_x(data, name="x"):
    if data.draw(st.booleans(), label=f"{name} clean"):  # half the time a valid point, so results get checked
        return draw_tensor(data, shapes=ZO_SHAPES[:4], dtypes={torch.float64: OK, torch.float32: OK},
                           specials=False, non_tensors=None, name=name)
    return draw_tensor(data, shapes=ZO_SHAPES, dtypes=ZO_DTYPES, empty=BAD, name=name)


def _objective(data, x: Arg, batched: bool, name="f") -> Arg:
    """A user function for the point ``x``: from the shared pool, or the batched pool."""
    one = isinstance(x.value, torch.Tensor) and x.value.numel() == 1
    if not batched:
        return draw_f(data, {"good": OK, "const": OK, "vector": OK if one else BAD}, name=name,
                      words=("scalar",))
    kind = data.draw(st.sampled_from(sorted(BATCH_POOL) + ["not callable"]), label=name)
    if kind == "not callable":
        return Arg(3, BAD, kind=kind, words=(name, "callable"))
    fn, verdict = BATCH_POOL[kind]
    if kind == "rows" and one:
        verdict = BAD  # (B, 1) is not (B,): refused by shape
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", kind=kind,
               words=(name, "batch", "shape", "real"))


def _scale(data, name):
    return draw_number(data, name, st.floats(1e-3, 1.0), bad=(0.0, -0.5, 0), maybe=(1e-300, 1e300),
                       wrong=("0.1", True, None, [0.1]))


def _count(data, name, low=1):
    return draw_number(data, name, st.integers(low, 3), bad=(low - 1, -2), wrong=(None, 2.0, "2", True),
                       nonfinite=(), huge=None)


def _flag(data, name):
    return Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), (None, BAD), ("yes", BAD)]),
                          label=name))


def _scale_words(x: Arg, scale: Arg, name: str):
    # a huge perturbation may overflow x + scale * direction, or f there: refused naming the step or f
    if scale.verdict != OK:
        scale.words = (name, "step", "overflowed")
    if isinstance(x.value, torch.Tensor) and x.verdict == MAYBE:
        x.words = x.words + (name, "rounding")


def _batched(data):
    return data.draw(st.booleans(), label="batched")


@FUZZ
@given(st.data(), st.sampled_from(["spsa", "es"]))
def test_spsa_and_es_gradient(data, which):
    x = _zo_x(data)
    batched = _batched(data)
    f = _objective(data, x, batched)
    scale_name = "c" if which == "spsa" else "sigma"
    scale = _scale(data, scale_name)
    _scale_words(x, scale, scale_name)
    n_samples = _count(data, "n_samples")
    gen = _gen(_checked_generator(data))
    args = {"f": f, "x": x, scale_name: scale, "n_samples": n_samples, "generator": gen,
            "batched": Arg(batched)}
    antithetic = Arg(True)
    if which == "es":
        antithetic = _flag(data, "antithetic")
        args["antithetic"] = antithetic
    if data.draw(st.integers(0, 9), label="batched kind") == 0:
        args["batched"] = Arg(data.draw(st.sampled_from([1, None, "yes"])), BAD)

    def check(g):
        xv = x.value
        assert isinstance(g, torch.Tensor) and g.shape == xv.shape and g.dtype == xv.dtype
        assert_finite(g)
        if f.kind == "const" and antithetic.value is True:
            assert torch.equal(g, torch.zeros_like(xv))  # f(x + h) - f(x - h) = 0
        if (isinstance(gen.value, torch.Generator) and f.kind == "good" and xv.dtype == torch.float64
                and small(xv) and scale.verdict == OK):
            # an independent reference: the estimator's formula with the generator's draws
            g2 = torch.Generator().manual_seed(0)
            n, s = n_samples.value, scale.value
            if which == "spsa":
                d = (2 * torch.randint(0, 2, (n, *xv.shape), generator=g2) - 1).to(xv.dtype)
                terms = [(f_good(xv + s * di) - f_good(xv - s * di)) / (2 * s) * di for di in d]
            else:
                e = torch.randn((n, *xv.shape), generator=g2, dtype=xv.dtype)
                terms = [((f_good(xv + s * ei) - f_good(xv - s * ei)) / (2 * s) if antithetic.value
                          else f_good(xv + s * ei) / s) * ei for ei in e]
            assert torch.allclose(g, sum(terms) / n, rtol=1e-9, atol=1e-9)

    fn = zeroth.spsa_gradient if which == "spsa" else zeroth.es_gradient
    expect(fn, args, check)


@FUZZ
@given(st.data(), st.sampled_from(["spsa", "es", "es-single"]), st.booleans())
def test_valid_estimates_follow_their_formula(data, which, batched):
    """Valid arguments only, so that every draw is checked against the estimator's formula."""
    shape = data.draw(st.sampled_from(ZO_SHAPES[:4]))
    n_el = math.prod(shape)
    x = torch.tensor(data.draw(st.lists(st.floats(-3, 3), min_size=n_el, max_size=n_el)),
                     dtype=torch.float64).reshape(shape)
    s = data.draw(st.floats(1e-3, 1.0))
    n = data.draw(st.integers(1, 4))
    f = BATCH_POOL["good"][0] if batched else f_good
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    if which == "spsa":
        g = zeroth.spsa_gradient(f, x, s, n, generator=g1, batched=batched)
        d = (2 * torch.randint(0, 2, (n, *shape), generator=g2) - 1).to(x.dtype)
        terms = [(f_good(x + s * di) - f_good(x - s * di)) / (2 * s) * di for di in d]
    else:
        antithetic = which == "es"
        g = zeroth.es_gradient(f, x, s, n, antithetic=antithetic, generator=g1, batched=batched)
        e = torch.randn((n, *shape), generator=g2, dtype=x.dtype)
        terms = [((f_good(x + s * ei) - f_good(x - s * ei)) / (2 * s) if antithetic else f_good(x + s * ei) / s)
                 * ei for ei in e]
    assert g.shape == x.shape and g.dtype == x.dtype
    assert torch.allclose(g, sum(terms) / n, rtol=1e-9, atol=1e-9)


@FUZZ
@given(st.data())
def test_centered_ranks(data):
    dtypes = {torch.float64: OK, torch.float32: OK, torch.float16: MAYBE, torch.int64: BAD, torch.bool: BAD,
              torch.complex64: BAD}
    values = draw_tensor(data, shapes=[(5,), (1,), (3,), (), (2, 2), (0,)], dtypes=dtypes, empty=BAD,
                         shape_verdict=lambda s: OK if len(s) == 1 else BAD, name="values", lo=-5, hi=5)

    def check(r):
        v = values.value
        assert r.shape == v.shape and r.dtype == v.dtype
        assert_finite(r)
        assert float(r.min()) >= -0.5 and float(r.max()) <= 0.5
        if v.dtype == torch.float64:
            from scipy.stats import rankdata
            n = v.numel()
            ref = (rankdata(v.numpy(), method="average") - 1) / max(n - 1, 1) - (0.5 if n > 1 else 0.0)
            assert np.allclose(r.numpy(), ref)

    expect(zeroth.centered_ranks, {"values": values}, check)


@QUICK
@given(st.data())
def test_es_minimize(data):
    x0 = _zo_x(data, "x0")
    batched = _batched(data)
    f = _objective(data, x0, batched)
    sigma = _scale(data, "sigma")
    _scale_words(x0, sigma, "sigma")
    lr = draw_number(data, "lr", st.floats(1e-3, 0.5), bad=(0.0, -0.1), maybe=(1e300,), wrong=("0.1", None, True))
    if lr.verdict == MAYBE:
        lr.words = ("lr",)
    n_steps = _count(data, "n_steps", low=0)
    n_samples = _count(data, "n_samples")
    args = {"f": f, "x0": x0, "sigma": sigma, "lr": lr, "n_steps": n_steps, "n_samples": n_samples,
            "antithetic": _flag(data, "antithetic"), "shaping": _flag(data, "shaping"),
            "generator": _gen(_checked_generator(data)), "batched": Arg(batched)}
    if isinstance(n_steps.value, int) and not isinstance(n_steps.value, bool) and n_steps.value == 0:
        for name in ("f", "sigma"):  # no step: f is never called, a tiny sigma never used
            if args[name].verdict == BAD and not (name == "sigma" and not isinstance(sigma.value, float)):
                args[name].verdict = MAYBE
        f.raises = False
        if sigma.value == 1e-300:
            sigma.verdict = MAYBE

    def check(out):
        x, hist = out
        assert x.shape == x0.value.shape and x.dtype == x0.value.dtype
        assert hist.shape == (n_steps.value,)
        assert_finite(x)
        assert_finite(hist)

    expect(zeroth.es_minimize, args, check)


@QUICK
@given(st.data())
def test_genetic_algorithm(data):
    population = draw_tensor(data, shapes=[(4, 2), (3,), (2, 1, 2), (1, 2), (), (0, 2)], dtypes=ZO_DTYPES,
                             empty=BAD, name="population",
                             shape_verdict=lambda s: OK if len(s) >= 1 and s[0] >= 2 else BAD)
    batched = _batched(data)
    pv = population.value if isinstance(population.value, torch.Tensor) else torch.zeros(4, 2)
    size = pv.shape[0] if pv.ndim else 1
    individual = Arg(pv[0] if pv.ndim and pv.shape[0] else pv)
    fitness = _objective(data, individual, batched, name="fitness")
    n_generations = _count(data, "n_generations", low=0)
    n_parents = draw_number(data, "n_parents", st.integers(1, max(size, 1)), bad=(0, size + 1),
                            wrong=(None, 1.0, "1", True), nonfinite=(), huge=BAD)
    n_elite = draw_number(data, "n_elite", st.integers(0, max(size, 0)), bad=(-1, size + 1),
                          wrong=(None, 1.0, True), nonfinite=(), huge=BAD)
    sigma = _scale(data, "sigma")
    sigma.words = ("sigma", "step", "overflowed", "mutant")
    if population.verdict == MAYBE:
        population.words = population.words + ("fitness", "mutant")
    args = {"fitness": fitness, "population": population, "n_generations": n_generations,
            "n_parents": n_parents, "sigma": sigma, "n_elite": n_elite,
            "generator": _gen(_checked_generator(data)), "batched": Arg(batched)}

    def check(out):
        pop, fit, hist = out
        assert pop.shape == pv.shape and fit.shape == (size,) and hist.shape == (n_generations.value + 1,)
        for t in out:
            assert_finite(t)
        assert (fit.diff() <= 0).all() and fit[0] == hist[-1]
        if n_elite.value >= 1:
            assert (hist.diff() >= 0).all()

    expect(zeroth.genetic_algorithm, args, check)


FUZZED = {zeroth: {"spsa_gradient": test_spsa_and_es_gradient, "es_gradient": test_spsa_and_es_gradient,
                   "centered_ranks": test_centered_ranks, "es_minimize": test_es_minimize,
                   "genetic_algorithm": test_genetic_algorithm}}
