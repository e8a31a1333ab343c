"""Bad input, Part IV (chapter 17): every public name of ``lib.equilibrium`` fuzzed with hypothesis.

Meant as ``tests/test_fuzz_equilibrium.py``. The rule and the machinery are those of
``tests/test_fuzz.py`` (shared in ``tests/fuzzing.py``): a call returns a well-formed,
finite result or refuses the offending argument by name with ``ValueError``/``TypeError``.
:data:`FUZZED` maps each public name to its test (``tests/test_fuzz_coverage.py``).
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (BAD, DEVICE_ARGS, DTYPE_ARGS, FUZZ, MAYBE, OK, QUICK, Arg,
                           _checked_generator, _gen, assert_finite, draw_number, draw_tensor, expect)

from lib import equilibrium

EQ_DTYPES = {torch.float64: OK, torch.float32: BAD, torch.float16: BAD, torch.int64: BAD, torch.bool: BAD}
NON_TENSORS = [None, "x", [[1.0, 2.0, 3.0]], 1.5, True]


def _net(kind: str) -> equilibrium.EnergyNetwork:
    g = torch.Generator().manual_seed(0)
    if kind == "tied":
        return equilibrium.random_network([3, 4, 2], generator=g)
    if kind == "asymmetric":
        return equilibrium.random_network([3, 4, 2], asymmetry=0.7, generator=g)
    if kind == "deep":
        return equilibrium.random_network([3, 4, 3, 2], scale=1.5, generator=g)
    return equilibrium.random_network([3, 2], generator=g)  # "flat": no hidden layer


def _xy(data, n_out=2):
    x = draw_tensor(data, shapes=[(4, 3), (1, 3), (4, 2), (3,), (0, 3)], dtypes=EQ_DTYPES, name="x",
                    non_tensors=NON_TENSORS, empty=BAD,
                    shape_verdict=lambda s: OK if len(s) == 2 and s[1] == 3 and s[0] > 0 else BAD)
    batch = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim == 2 else 4
    y = draw_tensor(data, shapes=[(batch, n_out), (batch, n_out + 1), (batch + 1, n_out)], dtypes=EQ_DTYPES,
                    name="y", non_tensors=NON_TENSORS[1:], empty=BAD, lo=0.0, hi=1.0,
                    shape_verdict=lambda s: OK if s == (batch, n_out) else BAD)
    if isinstance(x.value, torch.Tensor) and x.value.numel() == 0 and y.verdict == OK:
        y.verdict, y.words = MAYBE, ("x", "y")  # the batch is already refused through x
    return x, y


def _beta(data, positive=False):
    return draw_number(data, "beta", st.floats(0.05, 2.0) if positive else st.floats(-2.0, 2.0),
                       bad=(0.0, -0.5, 4.0, 10.0) if positive else (4.0, -4.0, 7.5), wrong=(None, "0.1", [0.1], True))


def _tol(data):
    return draw_number(data, "tol", st.sampled_from([None, 1e-8, 1e-12]), bad=(-1.0,), wrong=("1e-8", True))


def _states_ok(s, net, batch):
    assert len(s) == len(net.weights)
    for k, t in enumerate(s):
        assert t.shape == (batch, net.sizes[k + 1])
        assert_finite(t)
        assert bool(((t >= 0) & (t <= 1)).all())


@FUZZ
@given(st.data())
def test_random_network(data):
    sizes = Arg(*data.draw(st.sampled_from([([3, 4, 2], OK), ([2, 3], OK), ([3, 2, 2, 2], OK), ([3], BAD),
                                            ([3, 0], BAD), ([3, 2.5], BAD), ([3, True], BAD), ("34", BAD),
                                            (None, BAD)])))
    asym = draw_number(data, "asymmetry", st.one_of(st.none(), st.floats(0.0, 1.0)), bad=(-0.1, 1.5),
                       wrong=("0.5", [0.5], True))
    if asym.value is not None and asym.verdict == OK and sizes.verdict == OK and len(sizes.value) < 3:
        asym.verdict = BAD  # nothing to feed back
    scale = draw_number(data, "scale", st.floats(0.0, 3.0), bad=(-1.0,), wrong=(None, "1", True))
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(DTYPE_ARGS)))
    if dtype.value == torch.float16:
        dtype.verdict = BAD
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))

    def check(net):
        assert isinstance(net, equilibrium.EnergyNetwork)
        assert list(net.sizes) == list(sizes.value)
        assert net.symmetric == (asym.value is None)
        for p in net.parameters():
            assert p.dtype == (dtype.value or torch.float64)
            assert_finite(p)
        assert math.isfinite(net.asymmetry()) or scale.value == 0

    expect(equilibrium.random_network, {"sizes": sizes, "asymmetry": asym, "scale": scale, "generator": gen,
                                        "dtype": dtype, "device": device}, check)


@FUZZ
@given(st.data())
def test_energy_network_constructor(data):
    D = torch.float64
    good_W = [torch.randn(4, 3, dtype=D), torch.randn(2, 4, dtype=D)]
    good_b = [torch.zeros(4, dtype=D), torch.zeros(2, dtype=D)]
    W = Arg(*data.draw(st.sampled_from([
        (good_W, OK), ([good_W[0], torch.randn(2, 5, dtype=D)], BAD), ([good_W[0].float(), good_W[1]], BAD),
        ([good_W[0], good_W[1] * math.nan], BAD), ([], BAD), (good_W[0], BAD), ("W", BAD),
        ([good_W[0].int(), good_W[1]], BAD), ([torch.randn(4, dtype=D), good_W[1]], BAD)])), words=("weights",))
    b = Arg(*data.draw(st.sampled_from([
        (good_b, OK), (good_b[:1], BAD), ([good_b[0], torch.zeros(3, dtype=D)], BAD), ([good_b[0].float(), good_b[1]], BAD),
        ([good_b[0], good_b[1] + math.inf], BAD), (None, BAD)])), words=("biases",))
    B = Arg(*data.draw(st.sampled_from([
        (None, OK), ([good_W[1].T.clone()], OK), ([torch.randn(4, 2, dtype=D)], OK), ([torch.randn(2, 4, dtype=D)], BAD),
        ([torch.randn(4, 2)], BAD), ([], BAD), ([torch.randn(4, 2, dtype=D)] * 2, BAD),
        ([torch.full((4, 2), math.nan, dtype=D)], BAD)])), words=("feedback",))
    if W.verdict != OK and b.verdict == OK:
        b.verdict, b.words = MAYBE, ("biases", "weights")  # judged against malformed weights

    def check(net):
        assert net.sizes == (3, 4, 2)
        assert len(net.parameters()) == 4 + (0 if B.value is None else 1)

    expect(equilibrium.EnergyNetwork, {"weights": W, "biases": b, "feedback": B}, check)


@QUICK
@given(st.data(), st.sampled_from(["tied", "asymmetric", "deep", "flat"]))
def test_relax_and_loss(data, kind):
    net = _net(kind)
    x, y = _xy(data)
    beta = _beta(data)
    if data.draw(st.booleans()):
        y.value, y.verdict, beta.value, beta.verdict = None, OK, 0.0, OK
    tol = _tol(data)
    max_iter = draw_number(data, "max_iter", st.sampled_from([200, 1000]), bad=(0, -1), wrong=(2.5, None, "3"),
                           nonfinite=(), huge=BAD)

    def check(s):
        _states_ok(s, net, x.value.shape[0])

    expect(net.relax, {"x": x, "y": y, "beta": beta, "tol": tol, "max_iter": max_iter}, check)
    def check_loss(v):
        assert v.shape == () and bool(v >= 0)

    if y.value is not None:
        expect(net.loss, {"x": x, "y": y, "tol": tol}, check_loss)


@QUICK
@given(st.data(), st.sampled_from(["tied", "deep", "asymmetric"]))
def test_energy_and_cost(data, kind):
    net = _net(kind)
    x, y = _xy(data)
    batch = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim == 2 else 4
    batch = batch or 4  # an empty x is refused through x; the states stay well formed
    s_good = [torch.full((batch, n), 0.5, dtype=torch.float64) for n in net.sizes[1:]]
    s = Arg(*data.draw(st.sampled_from([
        (s_good, OK), (s_good[:-1], BAD), ([t + 1.0 for t in s_good], BAD), ([t * math.nan for t in s_good], BAD),
        ([t.float() for t in s_good], BAD), ("s", BAD), ([torch.zeros(batch, 7, dtype=torch.float64)] + s_good[1:], BAD)])),
        words=("s",))
    beta = draw_number(data, "beta", st.floats(-2.0, 2.0), wrong=(None, "1"))
    if beta.value != 0.0 and y.value is None:
        beta.verdict = BAD
    if kind == "asymmetric":
        for a in (x, s):
            if a.verdict == OK:
                a.verdict = MAYBE
        x.words = s.words = ("x", "s", "energy")

    def check(E):
        assert E.shape == (batch,)
        assert_finite(E)

    expect(net.energy, {"x": x, "s": s, "y": y, "beta": beta}, check)
    if s.value is not s_good and s.verdict != OK:
        return
    y_cost = Arg(y.value, y.verdict, words=("y",), nonfinite=y.nonfinite)
    if isinstance(y.value, torch.Tensor) and y.value.shape != s_good[-1].shape:
        y_cost.verdict = BAD

    def check_cost(c):
        assert c.shape == (batch,)
        assert_finite(c)

    expect(net.cost, {"s": Arg(s_good), "y": y_cost}, check_cost)


@QUICK
@given(st.data(), st.sampled_from(["tied", "asymmetric", "deep", "flat"]))
def test_ep_and_reference_gradient(data, kind):
    net = _net(kind)
    x, y = _xy(data)
    beta = _beta(data, positive=True)
    centred = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), ("yes", BAD)])))
    tol = _tol(data)
    shapes = [p.shape for p in net.parameters()]

    def check(grads):
        assert [g.shape for g in grads] == shapes
        for g in grads:
            assert_finite(g)

    est = expect(net.ep_gradient, {"x": x, "y": y, "beta": beta, "centred": centred, "tol": tol}, check)
    ref = expect(net.reference_gradient, {"x": x, "y": y, "tol": tol}, check)
    if est is not None and ref is not None and x.verdict == OK and y.verdict == OK and tol.value != 1e-8 \
            and beta.value <= 0.1 and centred.value is True:
        ref_norm = math.sqrt(sum(float(r.square().sum()) for r in ref))
        if ref_norm > 1e-6:
            cos, err = equilibrium.gradient_alignment(est, ref)
            if kind != "asymmetric":
                assert err < 0.05, (err, beta.value)


@FUZZ
@given(st.data())
def test_gradient_alignment(data):
    a = draw_tensor(data, shapes=[(3,), (2, 2), (1,)], name="estimate", non_tensors=[None, "a", 1.0], empty=BAD,
                    dtypes={torch.float64: OK, torch.float32: OK, torch.int64: BAD})
    shape = a.value.shape if isinstance(a.value, torch.Tensor) else (3,)
    b = draw_tensor(data, shapes=[shape, shape, (5,)], name="reference", non_tensors=[None, "b"], empty=BAD,
                    dtypes={torch.float64: OK, torch.float32: OK, torch.int64: BAD},
                    shape_verdict=lambda s: OK if s == shape else BAD)
    if isinstance(b.value, torch.Tensor) and b.value.dtype.is_floating_point and b.verdict == OK \
            and float(b.value.abs().max()) == 0:
        b.verdict, b.words = BAD, ("reference", "zero")
    wrap = data.draw(st.sampled_from(["list", "tuple", "bare", "empty"]))
    est = Arg([a.value] if wrap == "list" else (a.value,) if wrap == "tuple" else a.value if wrap == "bare" else [],
              a.verdict if wrap in ("list", "tuple") else BAD, words=a.words or ("estimate",),
              nonfinite=a.nonfinite and wrap in ("list", "tuple"))
    ref = Arg([b.value], b.verdict, words=b.words or ("reference",), nonfinite=b.nonfinite)

    def check(out):
        cos, err = out
        assert -1 - 1e-9 <= cos <= 1 + 1e-9 and err >= 0 and math.isfinite(err)

    expect(equilibrium.gradient_alignment, {"estimate": est, "reference": ref}, check)


@QUICK
@given(st.data(), st.sampled_from(["tied", "deep", "flat", "not a net"]))
def test_predictive_coding_gradient(data, kind):
    net = Arg("net", BAD) if kind == "not a net" else Arg(_net(kind))
    x, y = _xy(data)
    if kind == "not a net":
        for a in (x, y):
            a.verdict, a.words = MAYBE, (a.words or ()) + ("net",)
    beta = _beta(data, positive=True)
    step = draw_number(data, "step", st.sampled_from([0.1, 0.2, 0.5]), bad=(0.0, -0.1, 1.5), wrong=(None, "0.2"))
    tol = _tol(data)

    def check(grads):
        assert [g.shape for g in grads] == [p.shape for p in net.value.weights + net.value.biases]
        for g in grads:
            assert_finite(g)

    expect(equilibrium.predictive_coding_gradient, {"net": net, "x": x, "y": y, "beta": beta, "step": step,
                                                    "tol": tol}, check)


@FUZZ
@given(st.data())
def test_parameters_and_asymmetry(data):
    kind = data.draw(st.sampled_from(["tied", "asymmetric", "deep", "flat"]))
    net = _net(kind)
    params = net.parameters()
    assert len(params) == 2 * len(net.weights) + (0 if net.symmetric else len(net.weights) - 1)
    a = net.asymmetry()
    assert a == 0.0 if net.symmetric else 0.0 < a < 3.0


FUZZED = {equilibrium: {"EnergyNetwork": test_energy_network_constructor, "random_network": test_random_network,
                        "gradient_alignment": test_gradient_alignment,
                        "predictive_coding_gradient": test_predictive_coding_gradient}}
