"""Bad input, Part V (chapter 21): every public name of ``lib.distill`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised
by a user's function or module reaches the caller unchanged. :data:`FUZZED` maps
each public name to its test (``tests/test_fuzz_coverage.py`` checks it is complete;
``Condensed`` is the result type of ``condense`` and is checked there).

Run alone with:
  cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_21.py -q -p no:cacheprovider
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, Boom, Fresh, Param, _boom, _checked_generator,  # noqa: F401
                           _gen, all_finite, assert_finite, count_bads, draw_tensor, expect, finite,
                           mutated, positive_bads, tensor_bads)

from lib import distill

D = torch.float64
DS_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.bfloat16: BAD,
             torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}


# ---------------------------------------------------------------- pools

def _x(n=12):
    g = torch.Generator().manual_seed(n)
    return torch.rand(n, 1, 2, 2, generator=g, dtype=D)


def _y(n=12):
    return torch.arange(n) % 3  # 4 examples of each of 3 classes


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()


class _NaN(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _net()

    def forward(self, t):
        return self.lin(t) * math.nan


class _Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = _net()

    def forward(self, t):
        _boom()


class _DoubleRows(nn.Module):  # ignores the batch: 2n output rows for n inputs, wrong for every n
    def __init__(self):
        super().__init__()
        self.lin = _net()

    def forward(self, t):
        return self.lin(torch.cat([t, t]))


def _gen0():
    return torch.Generator().manual_seed(0)


GEN = Param(_gen0, bad=("seed", 0), maybe=(None,))


def _args(data, params):
    """Half the draws all valid (so the checks of the results run often), half mutated."""
    if data.draw(st.booleans(), label="all valid"):
        return {name: Arg(p.make(), OK, words=p.words or (name,)) for name, p in params.items()}
    return mutated(data, params)
MOMENTUM = Param(lambda: 0.5, bad=(1.0, -0.1, math.nan, "0.5", None))
MAKE_MODEL_BADS = ("net", Fresh(lambda: (lambda: "net"), "returns a str"), _boom,
                   Fresh(lambda: (lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 3))), "float32 module"),
                   Fresh(lambda: (lambda: _NaN()), "NaN logits"), Fresh(lambda: (lambda: nn.Flatten()), "no parameters"))
MODEL_WORDS = ("make_model", "model", "logits")
X_BADS = tensor_bads(_x, wrong_shapes=[(12,), (0, 1, 2, 2)])
Y_BADS = (Fresh(lambda: _y().double(), "float labels"), Fresh(lambda: _y()[:-1], "short"),
          Fresh(lambda: _y() - 1, "negative"), [0, 1, 2], None)


# ---------------------------------------------------------------- gradient_match_distance

def _grad_list(data, name, shapes=None):
    kind = data.draw(st.sampled_from(["list", "tuple", "tensor", "empty", "str", "list of str"]), label=name)
    if kind in ("empty", "str", "list of str"):
        value = {"empty": [], "str": "grads", "list of str": ["g"]}[kind]
        return Arg(value, BAD, words=(name,), note=kind), None
    count = data.draw(st.integers(1, 3), label=f"{name} layers") if shapes is None else len(shapes)
    if kind == "tensor":
        count = 1
    parts, verdicts, nonfinite = [], [], []
    for i in range(count):
        want = None if shapes is None else shapes[min(i, len(shapes) - 1)]
        pool = [(2, 3), (4,), (2, 2, 2), (0, 3), ()] if want is None else [want, want, want, (5,)]
        t = draw_tensor(data, shapes=pool, dtypes=DS_DTYPES, empty=BAD, name=f"{name}[{i}]", non_tensors=[None, "g"],
                        shape_verdict=None if want is None else (lambda s, w=want: OK if s == w else BAD))
        parts.append(t.value)
        verdicts.append(t.verdict)
        nonfinite.append(t.nonfinite)
    value = parts[0] if kind == "tensor" else (parts if kind == "list" else tuple(parts))
    verdict = BAD if BAD in verdicts else MAYBE if MAYBE in verdicts else OK
    arg = Arg(value, verdict, words=(name, "grads_a", "grads_b", "finite", "dtype"),
              nonfinite=all(nf or v == OK for nf, v in zip(nonfinite, verdicts)) and any(nonfinite))
    shapes_out = [getattr(p, "shape", None) for p in parts]
    return arg, shapes_out


def _valid_pair(data):
    shapes = data.draw(st.lists(st.sampled_from([(2, 3), (4,), (2, 2, 2), (1, 5)]), min_size=1, max_size=3),
                       label="layer shapes")
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32]), label="dtype")
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 1000), label="seed"))
    scale = data.draw(st.sampled_from([1.0, 1e-30, 1e30, 0.0]), label="scale")
    a = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]
    b = [(scale * torch.randn(s, generator=g, dtype=torch.float64)).to(dtype) for s in shapes]
    return Arg(a), Arg(tuple(b))


@FUZZ
@given(st.data())
def test_gradient_match_distance(data):
    if data.draw(st.booleans(), label="valid pair"):
        a, b = _valid_pair(data)
    else:
        a, shapes = _grad_list(data, "grads_a")
        b, _ = _grad_list(data, "grads_b", shapes=shapes if shapes and None not in shapes else None)
    if a.verdict == OK and b.verdict == OK:  # both fine alone: the pair must still agree
        pa = a.value if isinstance(a.value, (list, tuple)) else [a.value]
        pb = b.value if isinstance(b.value, (list, tuple)) else [b.value]
        if len(pa) != len(pb) or any(x.shape != y.shape or x.dtype != y.dtype for x, y in zip(pa, pb)) or \
                any(x.dtype != pa[0].dtype for x in pa):
            b.verdict = BAD
    rowwise = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), (None, BAD)])))

    def check(out):
        pa = a.value if isinstance(a.value, (list, tuple)) else [a.value]
        assert out.shape == () and out.dtype == pa[0].dtype
        assert_finite(out)
        rows = sum((p.shape[0] if p.dim() >= 2 and rowwise.value else 1) for p in pa)
        assert -1e-6 <= out.item() <= 2 * rows + 1e-6
        swapped = distill.gradient_match_distance(b.value, a.value, rowwise=rowwise.value)
        assert abs(swapped.item() - out.item()) <= 1e-5 * max(1.0, out.item())

    expect(distill.gradient_match_distance, {"grads_a": a, "grads_b": b, "rowwise": rowwise}, check)


# ---------------------------------------------------------------- gradient_matching_loss, random_subset

LOSS_PARAMS = {
    "model": Param(_net, bad=("model", Fresh(lambda: _net().float(), "float32"), Fresh(lambda: nn.Flatten(), "no params"),
                               Fresh(_Boom, "raises"), Fresh(_NaN, "NaN logits")), words=MODEL_WORDS),
    "x_syn": Param(lambda: _x(6), bad=tensor_bads(lambda: _x(6), wrong_shapes=[(6,), (6, 1, 3, 3)])),
    "y_syn": Param(lambda: _y(6), bad=Y_BADS + (Fresh(lambda: _y(6) + 3, "unknown classes"),),
                   words=("y_syn", "y_real", "largest label")),
    "x_real": Param(_x, bad=tensor_bads(_x, wrong_shapes=[(12, 1, 3, 3), (12,)])),
    "y_real": Param(_y, bad=Y_BADS + (Fresh(lambda: torch.zeros(12, dtype=torch.long), "one class"),),
                    words=("y_real", "y_syn", "largest label", "class")),
    "rowwise": Param(lambda: True, bad=(1, "yes", None), maybe=(False,)),
}


@QUICK
@given(st.data())
def test_gradient_matching_loss(data):
    args = _args(data, LOSS_PARAMS)
    if isinstance(args["model"].value, _Boom):
        args["model"].raises = True

    def check(out):
        assert out.shape == () and out.dtype == D
        assert_finite(out)
        assert 0.0 <= out.item() <= 2 * 3 * 5 + 1e-9  # 3 classes, 3 + 1 + 1 rows... at most 2 per row

    expect(distill.gradient_matching_loss, args, check)


SUBSET_PARAMS = {
    "x": Param(_x, bad=X_BADS),
    "y": Param(_y, bad=Y_BADS),
    "images_per_class": Param(lambda: 2, bad=count_bads(1) + [5], maybe=(4,)),
    "generator": GEN,
}


@FUZZ
@given(st.data())
def test_random_subset(data):
    args = _args(data, SUBSET_PARAMS)

    def check(out):
        xs, ys = out
        k = args["images_per_class"].value
        assert xs.shape == (3 * k, 1, 2, 2) and ys.tolist() == [c for c in range(3) for _ in range(k)]
        assert_finite(xs)

    expect(distill.random_subset, args, check)


# ---------------------------------------------------------------- condense, train_and_evaluate

CONDENSE_PARAMS = {
    "make_model": Param(lambda: _net, bad=MAKE_MODEL_BADS, words=MODEL_WORDS),
    "x": Param(_x, bad=X_BADS),
    "y": Param(_y, bad=Y_BADS),
    "images_per_class": Param(lambda: 2, bad=count_bads(1) + [5]),
    "outer_steps": Param(lambda: 2, bad=count_bads(1)),
    "inner_steps": Param(lambda: 2, bad=count_bads(1)),
    "lr_images": Param(lambda: 0.05, bad=positive_bads()),
    "lr_model": Param(lambda: 0.05, bad=positive_bads()),
    "model_steps": Param(lambda: 1, bad=count_bads(1), maybe=(2,)),
    "momentum": MOMENTUM,
    "batch_real": Param(lambda: None, bad=(0, 1.5, "2"), maybe=(2,)),
    "init": Param(lambda: "real", bad=("zeros", None, 3), maybe=("noise",)),
    "rowwise": Param(lambda: True, bad=(1, None), maybe=(False,)),
    "snapshot_every": Param(lambda: 1, bad=count_bads(1), maybe=(2,)),
    "generator": GEN,
}


@QUICK
@given(st.data())
def test_condense(data):
    args = _args(data, CONDENSE_PARAMS)
    if args["init"].value == "noise" and args["images_per_class"].value == 5:
        args["images_per_class"].verdict = OK  # more images than a class has: too many to copy, fine from noise

    def check(out):
        assert isinstance(out, distill.Condensed)
        k, outer = args["images_per_class"].value, args["outer_steps"].value
        assert out.x.shape == (3 * k, 1, 2, 2) and out.y.shape == (3 * k,)
        assert out.distances.shape == (outer, args["inner_steps"].value)
        assert out.snapshots.shape[1:] == out.x.shape and out.snapshot_steps[0] == 0
        assert out.snapshot_steps[-1] == outer and torch.equal(out.snapshots[-1], out.x)
        all_finite(tuple(out))

    expect(distill.condense, args, check)


EVAL_PARAMS = {
    "make_model": Param(lambda: _net, bad=MAKE_MODEL_BADS, words=MODEL_WORDS),
    "x": Param(_x, bad=X_BADS),
    "y": Param(_y, bad=Y_BADS),
    "x_test": Param(lambda: _x(6), bad=tensor_bads(lambda: _x(6), wrong_shapes=[(6, 1, 3, 3), (6,)])
                    + [Fresh(lambda: _x(6).float(), "float32")]),
    "y_test": Param(lambda: _y(6), bad=Y_BADS),
    "seeds": Param(lambda: (0, 1), bad=((), [-1], [1.5], "0", None, 5)),
    "steps": Param(lambda: 3, bad=count_bads(1)),
    "lr": Param(lambda: 0.1, bad=positive_bads()),
    "momentum": MOMENTUM,
}


@QUICK
@given(st.data())
def test_train_and_evaluate(data):
    args = _args(data, EVAL_PARAMS)

    def check(out):
        assert out.shape == (len(args["seeds"].value),) and out.dtype == D
        assert bool(((out >= 0) & (out <= 1)).all())

    expect(distill.train_and_evaluate, args, check)


# ---------------------------------------------------------------- feature visualisation

@FUZZ
@given(st.data())
def test_total_variation(data):
    x = draw_tensor(data, shapes=[(2, 1, 3, 3), (1, 2, 2), (3, 1, 1, 4), (3, 4), (4,), (2, 0, 2), ()],
                    dtypes=DS_DTYPES, empty=BAD, shape_verdict=lambda s: OK if len(s) >= 3 else BAD)

    def check(out):
        v = x.value
        assert out.shape == (v.shape[0],) and out.dtype == v.dtype
        assert_finite(out) if small(v, 1e5) else None
        ref = torch.zeros(v.shape[0], dtype=torch.float64)
        w = v.double()
        for i in range(w.shape[-2]):
            for j in range(w.shape[-1]):
                if i + 1 < w.shape[-2]:
                    ref += ((w[..., i + 1, j] - w[..., i, j]) ** 2).reshape(len(w), -1).sum(1)
                if j + 1 < w.shape[-1]:
                    ref += ((w[..., i, j + 1] - w[..., i, j]) ** 2).reshape(len(w), -1).sum(1)
        assert torch.allclose(out.double(), ref, rtol=1e-4, atol=1e-4)

    expect(distill.total_variation, {"x": x}, check)


def small(t, bound):
    return float(t.abs().max()) <= bound if t.numel() else True


VIS_PARAMS = {
    "model": Param(_net, bad=("m", Fresh(_Boom, "raises"), Fresh(_NaN, "NaN output"), Fresh(_DoubleRows, "2n rows")),
                   words=("model", "objective")),
    "objective": Param(lambda: 0, bad=(-1, 3, True, 1.5, "0", None, Fresh(lambda: (lambda out: out.sum()), "scalar"),
                                       Fresh(lambda: (lambda out: out[:, 0] * math.nan), "nan"), _boom),
                       maybe=(Fresh(lambda: (lambda out: out[:, 1]), "callable"),)),
    "shape": Param(lambda: (2, 1, 2, 2), bad=((2, 4), (0, 1, 2, 2), "2", (2, 1, 2, 2.0), None, (2, -1, 2, 2)),
                   maybe=((1, 1, 2, 2), torch.Size([2, 1, 2, 2])), words=("shape", "init")),
    "steps": Param(lambda: 3, bad=count_bads(1)),
    "lr": Param(lambda: 0.05, bad=positive_bads()),
    "l2": Param(lambda: 0.0, bad=(-1.0, math.nan, math.inf, "0", None), maybe=(1.0,)),
    "tv": Param(lambda: 0.0, bad=(-1.0, math.nan, "0", None), maybe=(1.0,)),
    "jitter": Param(lambda: 0, bad=(-1, 1.5, "1", True), maybe=(1,)),
    "bounds": Param(lambda: None, bad=((1.0, 0.0), (0.0,), "01", (0.0, math.nan), (0.0, "1")), maybe=((0.0, 1.0),)),
    "init": Param(lambda: None, bad=(Fresh(lambda: torch.zeros(3, 1, 2, 2, dtype=D), "wrong shape"),
                                     Fresh(lambda: torch.full((2, 1, 2, 2), math.nan, dtype=D), "nan"),
                                     Fresh(lambda: torch.zeros(2, 1, 2, 2), "float32"), "x"),
                  maybe=(Fresh(lambda: torch.rand(2, 1, 2, 2, dtype=D), "init"),), words=("init", "shape")),
    "generator": GEN,
}


@QUICK
@given(st.data())
def test_visualize_feature(data):
    args = _args(data, VIS_PARAMS)
    if isinstance(args["model"].value, _Boom):
        args["model"].raises = True
    if isinstance(args["init"].value, torch.Tensor) and args["shape"].verdict != OK:
        args["init"].verdict = MAYBE  # init and shape disagree: either may be named

    def check(out):
        shape = tuple(args["shape"].value)
        assert tuple(out.shape) == shape and out.dtype == D
        assert_finite(out)
        if args["bounds"].value is not None:
            lo, hi = args["bounds"].value
            assert float(out.min()) >= lo and float(out.max()) <= hi

    expect(distill.visualize_feature, args, check)


FACET_PARAMS = {
    "model": Param(_net, bad=("m", Fresh(_Boom, "raises"), Fresh(_NaN, "NaN output"), Fresh(_DoubleRows, "2n rows")),
                   words=("model", "objective")),
    "objective": Param(lambda: 0, bad=(-1, 5, True, "0", Fresh(lambda: (lambda out: out.sum()), "scalar")),
                       maybe=(Fresh(lambda: (lambda out: -out[:, 2]), "callable"),)),
    "x": Param(_x, bad=X_BADS),
    "k": Param(lambda: 2, bad=count_bads(1) + [20]),
    "top": Param(lambda: None, bad=(0, 100, 1.5, "3"), maybe=(5,)),
    "features": Param(lambda: None, bad=("f", Fresh(lambda: (lambda z: z.sum()), "scalar"),
                                         Fresh(lambda: (lambda z: z.reshape(len(z), -1) * math.nan), "nan"), _boom),
                      maybe=(Fresh(lambda: (lambda z: z.reshape(len(z), -1)[:, :2]), "two pixels"),)),
    "iters": Param(lambda: 5, bad=count_bads(1)),
    "generator": GEN,
}


@QUICK
@given(st.data())
def test_multifaceted_init(data):
    args = _args(data, FACET_PARAMS)
    if isinstance(args["model"].value, _Boom):
        args["model"].raises = True
    top = args["top"].value
    if isinstance(top, int) and not isinstance(top, bool) and 1 <= top < 2 and args["k"].verdict == OK:
        args["top"].verdict = MAYBE

    def check(out):
        assert out.shape == (args["k"].value, 1, 2, 2) and out.dtype == D
        assert_finite(out)
        x = args["x"].value
        assert float(out.min()) >= float(x.min()) - 1e-12 and float(out.max()) <= float(x.max()) + 1e-12

    expect(distill.multifaceted_init, args, check)


FUZZED = {distill: {"gradient_match_distance": test_gradient_match_distance,
                    "gradient_matching_loss": test_gradient_matching_loss,
                    "random_subset": test_random_subset, "Condensed": test_condense, "condense": test_condense,
                    "train_and_evaluate": test_train_and_evaluate, "total_variation": test_total_variation,
                    "visualize_feature": test_visualize_feature, "multifaceted_init": test_multifaceted_init}}
