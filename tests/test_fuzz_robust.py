"""Bad input, Part V (chapter 20): every public name of ``lib.robust`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's module reaches the caller unchanged. :data:`FUZZED` maps each public
name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).

Run alone with:
  cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_20.py -q -p no:cacheprovider
"""

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, Boom, _boom, assert_finite,  # noqa: F401
                             draw_number, draw_tensor, expect, finite, small)

from lib import robust

C = 3
ROB_DTYPES = {torch.float64: OK, torch.float32: OK, torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
X_SHAPES = [(3, 4), (1, 4), (2, 2, 2), (4,), (0, 4), ()]


def _x_shape_verdict(shape):
    return OK if len(shape) >= 2 and shape[0] > 0 else BAD


def _x(data, name="x", lo=-3.0, hi=3.0, valid=False):
    if valid:  # a well-formed call now and then, so that the checks of the results run often
        return draw_tensor(data, shapes=X_SHAPES[:3], dtypes={torch.float64: OK, torch.float32: OK}, empty=BAD,
                           name=name, lo=lo, hi=hi, specials=False, non_tensors=[])
    return draw_tensor(data, shapes=X_SHAPES, dtypes=ROB_DTYPES, empty=BAD, name=name, lo=lo, hi=hi,
                       shape_verdict=_x_shape_verdict)


def _valid(data):
    return data.draw(st.booleans(), label="all arguments valid")


def _num(data, valid, name, ok, **kw):
    return Arg(data.draw(ok, label=name)) if valid else draw_number(data, name, ok, **kw)


def _dtype_of(x: Arg):
    v = x.value
    return v.dtype if isinstance(v, torch.Tensor) and v.dtype in (torch.float32, torch.float64) else torch.float64


class _Boom(nn.Module):
    def forward(self, t):
        _boom()


class _NaN(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Sequential(nn.Flatten(), nn.Linear(4, C))

    def forward(self, t):
        return self.lin(t) * math.nan


class _Tuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Sequential(nn.Flatten(), nn.Linear(4, C))

    def forward(self, t):
        return (self.lin(t),)


def _net(kind, dtype):
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, C)).to(dtype)
    if kind == "tanh":
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, C)).to(dtype)
    if kind == "one logit":
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).to(dtype)
    if kind == "float32 when x is float64":
        return nn.Sequential(nn.Flatten(), nn.Linear(4, C)).to(torch.float32 if dtype == torch.float64 else torch.float64)
    if kind == "frozen":
        return nn.Sequential(nn.Flatten(), nn.Linear(4, C)).to(dtype).requires_grad_(False)
    return {"nan": _NaN, "tuple": _Tuple, "boom": _Boom}[kind]().to(dtype)


def _model(data, x: Arg, verdicts: dict, valid=False):
    """A model from the pool, built in x's dtype; ``verdicts`` overrides the defaults."""
    kinds = ["mlp", "mlp", "tanh", "one logit", "float32 when x is float64", "frozen", "nan", "tuple", "boom",
             "not a module"]
    if valid:
        kinds = ["mlp"] + [k for k in ("tanh", "frozen") if verdicts.get(k, OK) == OK]
    kind = data.draw(st.sampled_from(kinds), label="model")
    if kind == "not a module":
        return Arg(lambda t: t, BAD, kind=kind, words=("model",))
    base = {"mlp": OK, "tanh": OK, "frozen": OK, "one logit": BAD, "float32 when x is float64": BAD,
            "nan": BAD, "tuple": BAD, "boom": BAD}
    base.update(verdicts)
    return Arg(_net(kind, _dtype_of(x)), base[kind], raises=kind == "boom", kind=kind,
               words=("model", "logits", "dtype", "layer", "parameters"))


def _y(data, x: Arg, valid=False):
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim >= 1 else 3
    kinds = ["ok", "int32"] if valid else ["ok", "ok", "ok", "float", "short", "negative", "too big", "list", "int32"]
    kind = data.draw(st.sampled_from(kinds), label="y kind")
    g = torch.Generator().manual_seed(n)
    good = torch.randint(0, C, (n,), generator=g)
    value, verdict = {"ok": (good, OK), "int32": (good.int(), OK), "float": (good.double(), BAD),
                      "short": (good[:max(n - 1, 0)] if n > 1 else good.repeat(2), BAD),
                      "negative": (good - C, BAD), "too big": (good + C, BAD), "list": (good.tolist(), BAD)}[kind]
    return Arg(value, verdict, kind=kind, words=("y", "labels", "C"))


def _clamp(data, x: Arg, valid=False):
    kinds = ["none", "wide", "unit"] if valid else ["none", "none", "wide", "unit", "reversed", "str", "nan", "triple"]
    kind = data.draw(st.sampled_from(kinds), label="clamp")
    value = {"none": None, "wide": (-1e7, 1e7), "unit": (0.0, 1.0), "reversed": (1.0, 0.0), "str": "01",
             "nan": (0.0, math.nan), "triple": (0.0, 1.0, 2.0)}[kind]
    verdict = OK if kind in ("none", "wide") else BAD
    if kind == "unit":
        v = x.value
        inside = isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() > 0 and finite(v) and \
            float(v.min()) >= 0 and float(v.max()) <= 1
        verdict = OK if inside else BAD
    return Arg(value, verdict, nonfinite=kind == "nan", kind=kind, words=("clamp", "x"))


def _generator(data, valid=False):
    pool = [(None, OK), ("gen", OK)] + ([] if valid else [(0, BAD), ("seed", BAD)])
    return Arg(*data.draw(st.sampled_from(pool)), words=("generator",))


def _fix_gen(arg):
    if arg.value == "gen":
        arg.value = torch.Generator().manual_seed(0)
    return arg


def _eps(data, ok=st.floats(0.0, 0.5), valid=False):
    return _num(data, valid, "eps", ok, bad=(-0.1,), maybe=(1e30,), wrong=(None, "0.1", [0.1], True))


def _unit_x(data, valid=False):
    """x in [0, 1] more often, so that a clamp to (0, 1) is sometimes valid."""
    if data.draw(st.booleans(), label="unit x"):
        return _x(data, lo=0.0, hi=1.0, valid=valid)
    return _x(data, valid=valid)


def _in_ball(out, x, eps, clamp):
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == x.dtype
    assert not out.requires_grad
    assert_finite(out)
    tol = 4 * torch.finfo(x.dtype).eps * (1 + x.abs() + eps)
    assert bool(((out - x).abs() <= eps + tol).all())
    if clamp is not None:
        assert float(out.min()) >= clamp[0] and float(out.max()) <= clamp[1]


def _clean(model: Arg, x: Arg):
    """Snapshot of what an attack must leave alone."""
    m = model.value
    if not isinstance(m, nn.Module):
        return None
    return m.training, [(p.requires_grad, p.grad, p.detach().clone()) for p in m.parameters()]


def _same(model: Arg, snap):
    if snap is None:
        return
    m = model.value
    assert m.training == snap[0]
    for p, (rg, grad, val) in zip(m.parameters(), snap[1]):
        assert p.requires_grad == rg and p.grad is grad and torch.equal(p.detach(), val)


@FUZZ
@given(st.data())
def test_fgsm(data):
    v = _valid(data)
    x = _unit_x(data, v)
    model = _model(data, x, {}, v)
    args = {"model": model, "x": x, "y": _y(data, x, v), "eps": _eps(data, valid=v), "clamp": _clamp(data, x, v)}
    snap = _clean(model, x)
    if isinstance(model.value, nn.Module):
        model.value.train(data.draw(st.booleans()))
        snap = _clean(model, x)
    expect(robust.fgsm, args, lambda out: _in_ball(out, x.value, args["eps"].value, args["clamp"].value))
    _same(model, snap)


@FUZZ
@given(st.data())
def test_pgd_attack(data):
    v = _valid(data)
    x = _unit_x(data, v)
    model = _model(data, x, {}, v)
    starts = [(True, OK), (False, OK)] + ([] if v else [(1, BAD), (None, BAD)])
    args = {"model": model, "x": x, "y": _y(data, x, v), "eps": _eps(data, valid=v),
            "alpha": _num(data, v, "alpha", st.floats(1e-3, 1.0), bad=(0.0, -0.1), maybe=(1e30,),
                          wrong=(None, "0.1")),
            "steps": _num(data, v, "steps", st.integers(0, 3), bad=(-1,), wrong=(2.0, "3", True, None),
                          nonfinite=(), huge=BAD),
            "random_start": Arg(*data.draw(st.sampled_from(starts))),
            "generator": _fix_gen(_generator(data, v)), "clamp": _clamp(data, x, v)}
    if args["steps"].value == 0 and model.kind in ("one logit", "nan", "tuple", "boom"):
        model.verdict = MAYBE  # no step: the model is never called
    if args["steps"].value == 0 and args["y"].kind == "too big":
        args["y"].verdict = MAYBE  # nor are labels compared with its number of classes
    if isinstance(model.value, nn.Module):
        model.value.train(data.draw(st.booleans()))
    snap = _clean(model, x)
    expect(robust.pgd_attack, args, lambda out: _in_ball(out, x.value, args["eps"].value, args["clamp"].value))
    _same(model, snap)


def _training_common(data, x, model, v):
    return {"model": model, "x": x, "y": _y(data, x, v), "eps": _eps(data, st.floats(0.0, 0.3), v),
            "epochs": _num(data, v, "epochs", st.integers(1, 2), bad=(0, -1), wrong=(1.0, "2", None, True),
                           nonfinite=(), huge=BAD),
            "batch_size": _num(data, v, "batch_size", st.integers(1, 4), bad=(0,), wrong=(2.0, None),
                               nonfinite=(), huge=BAD),
            "lr": _num(data, v, "lr", st.floats(1e-4, 1e-1), bad=(0.0, -1e-2), wrong=(None, "0.01")),
            "generator": _fix_gen(_generator(data, v)), "clamp": _clamp(data, x, v)}


def _history(n_batches):
    def check(h):
        assert isinstance(h, list) and len(h) == n_batches and all(isinstance(v, float) for v in h)
        assert all(math.isfinite(v) for v in h)
    return check


@QUICK
@given(st.data())
def test_adversarial_training(data):
    v = _valid(data)
    x = _unit_x(data, v)
    model = _model(data, x, {"frozen": BAD}, v)
    args = _training_common(data, x, model, v)
    args["alpha"] = _num(data, v, "alpha", st.floats(1e-3, 0.5), bad=(0.0,), wrong=(None,))
    args["steps"] = _num(data, v, "steps", st.integers(0, 2), bad=(-1,), wrong=(1.5,), nonfinite=(), huge=BAD)
    if args["eps"].value == 1e30:
        args["eps"].verdict = BAD  # x + 1e30 overflows the model in float32 or makes the loss non-finite
        args["eps"].words = ("eps", "logits", "finite", "model")
    if args["lr"].value is not None and args["lr"].verdict == OK:
        args["lr"].words = ("lr", "logits", "non-finite")
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim >= 1 else 0
    bs = args["batch_size"].value
    epochs = args["epochs"].value
    n_batches = epochs * -(-n // bs) if isinstance(bs, int) and isinstance(epochs, int) and bs > 0 else 0
    if isinstance(model.value, nn.Module):
        model.value.eval()
    out = expect(robust.adversarial_training, args, _history(n_batches))
    if out is not None:
        assert not model.value.training


@FUZZ
@given(st.data())
def test_ibp_bounds(data):
    v = _valid(data)
    lower = _x(data, "lower", valid=v)
    kinds = ["same", "wider"] if v else ["same", "same", "wider", "swapped", "other shape", "other dtype", "nan"]
    kind = data.draw(st.sampled_from(kinds), label="upper")
    lv = lower.value
    if isinstance(lv, torch.Tensor) and lv.is_floating_point():
        upper = {"same": Arg(lv.clone(), lower.verdict),
                 "wider": Arg(lv + 0.5, lower.verdict),
                 "swapped": Arg(lv - 0.5, BAD if lv.numel() else lower.verdict, words=("lower", "upper")),
                 "other shape": Arg(torch.zeros(5, 4, dtype=lv.dtype), BAD, words=("shape", "upper")),
                 "other dtype": Arg(lv.to(torch.float32 if lv.dtype == torch.float64 else torch.float64), BAD,
                                    words=("dtype",)),
                 "nan": Arg(lv + math.nan, BAD, nonfinite=True, words=("upper",))}[kind]
        if upper.verdict == MAYBE:
            upper.words = ("upper", "overflow", "finite")
    else:
        upper = Arg(lv, BAD if lower.verdict == BAD else OK, words=("lower", "upper"))
    model = _model(data, lower, {"tanh": BAD, "nan": OK, "tuple": BAD, "boom": BAD, "one logit": OK}, v)
    if model.kind in ("nan", "tuple", "boom"):
        model.verdict = BAD  # not an nn.Sequential of supported layers
    args = {"model": model, "lower": lower, "upper": upper}

    def check(out):
        lo, hi = out
        n = lv.shape[0]
        assert lo.shape == hi.shape == (n, 1 if model.kind == "one logit" else C) and lo.dtype == lv.dtype
        assert_finite(lo)
        assert_finite(hi)
        with torch.no_grad():
            for pt in (lv, upper.value, (lv + upper.value) / 2):
                z = model.value(pt)
                assert bool((lo <= z).all()) and bool((z <= hi).all())

    expect(robust.ibp_bounds, args, check)


@FUZZ
@given(st.data())
def test_margin_bounds(data):
    v = _valid(data)
    lower = _x(data, "lower", valid=v)
    lv = lower.value
    width = data.draw(st.floats(0.0, 1.0), label="width")
    upper = Arg(lv + width if isinstance(lv, torch.Tensor) and lv.is_floating_point() else lv,
                BAD if lower.verdict == BAD else lower.verdict, words=("lower", "upper", "overflow"))
    model = _model(data, lower, {"tanh": BAD, "nan": BAD}, v)
    args = {"model": model, "lower": lower, "upper": upper, "y": _y(data, lower, v)}

    def check(m):
        yv = args["y"].value
        assert m.shape == (lv.shape[0], C) and m.dtype == lv.dtype
        assert_finite(m)
        assert bool((m.gather(1, yv.long()[:, None]) == 0).all())
        with torch.no_grad():
            for pt in (lv, upper.value):
                z = model.value(pt)
                assert bool((z.gather(1, yv.long()[:, None]) - z >= m).all())

    expect(robust.margin_bounds, args, check)


@FUZZ
@given(st.data())
def test_certified_accuracy(data):
    v = _valid(data)
    x = _unit_x(data, v)
    model = _model(data, x, {"tanh": BAD, "nan": BAD}, v)
    eps = _eps(data, valid=v)
    if eps.value == 1e30:
        eps.words = ("eps", "overflow", "overflowed")
    args = {"model": model, "x": x, "y": _y(data, x, v), "eps": eps, "clamp": _clamp(data, x, v)}

    def check(acc):
        assert isinstance(acc, float) and 0.0 <= acc <= 1.0
        if args["eps"].value == 0.0 and args["clamp"].value is None:
            with torch.no_grad():
                z = model.value(x.value)
            assert acc <= float((z.argmax(1) == args["y"].value).double().mean())

    expect(robust.certified_accuracy, args, check)


@QUICK
@given(st.data())
def test_ibp_training(data):
    v = _valid(data)
    x = _unit_x(data, v)
    model = _model(data, x, {"frozen": BAD, "tanh": BAD}, v)
    args = _training_common(data, x, model, v)
    if args["eps"].value == 1e30:
        args["eps"].words = ("eps", "overflow", "overflowed", "non-finite")
    if args["lr"].value is not None and args["lr"].verdict == OK:
        args["lr"].words = ("lr", "logits", "non-finite")
    epochs = args["epochs"].value
    ep_ok = isinstance(epochs, int) and not isinstance(epochs, bool) and 1 <= epochs < 10**6
    warm = [(0, OK), (1, OK)] + ([] if v else [(-1, BAD), (1.0, BAD), (5, BAD if ep_ok else MAYBE)])
    args["warmup_epochs"] = Arg(*data.draw(st.sampled_from(warm)), words=("warmup_epochs",))
    args["kappa_final"] = _num(data, v, "kappa_final", st.floats(0.0, 1.0), bad=(1.5, -0.5), wrong=(None, "0.5"))
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim >= 1 else 0
    bs = args["batch_size"].value
    n_batches = epochs * -(-n // bs) if ep_ok and isinstance(bs, int) and not isinstance(bs, bool) and bs > 0 else 0
    expect(robust.ibp_training, args, _history(n_batches))


FUZZED = {robust: {"fgsm": test_fgsm, "pgd_attack": test_pgd_attack, "adversarial_training": test_adversarial_training,
                   "ibp_bounds": test_ibp_bounds, "margin_bounds": test_margin_bounds,
                   "certified_accuracy": test_certified_accuracy, "ibp_training": test_ibp_training}}
