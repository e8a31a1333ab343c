"""Bad input, Part IV (chapter 16): every public name of ``lib.local`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``. :data:`FUZZED` maps
each public name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
Meant to become ``tests/test_fuzz_local.py``. Run alone with:
    cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_16.py -q -p no:cacheprovider
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import (BAD, DEVICE_ARGS, FUZZ, MAYBE, OK, QUICK, Arg,
                           _checked_generator, _gen, assert_finite, draw_number, draw_tensor, expect)

from lib import local

LOCAL_DTYPES = [(torch.float64, OK), (torch.float32, OK), (torch.float16, BAD), (torch.int64, BAD),
                ("float64", BAD), (None, BAD)]
SIZES_POOL = [((4, 3), OK), ((5, 4, 3), OK), ((3, 2, 2, 2), OK), ((6, 1, 2), OK), ([], BAD), ((3,), BAD),
              ((3, 0), BAD), ((3, -2, 2), BAD), ((2.5, 3), BAD), ((True, 2), BAD), ("43", BAD), (None, BAD),
              (torch.tensor([3, 2]), BAD), ((2**17, 2), BAD)]


def _sizes(data, allow_huge=True):
    value, verdict = data.draw(st.sampled_from(SIZES_POOL if allow_huge else SIZES_POOL[:-1]))
    return Arg(value, verdict, words=("sizes",))


def _net_arg(data, relu=False, name="net"):
    """A network from a pool: good MLPs (float64/float32, tanh/relu), a NaN weight, not an MLP."""
    kind = data.draw(st.sampled_from(["tanh64", "relu64", "relu32", "deep", "shallow", "nan", "linear"]))
    g = torch.Generator().manual_seed(0)
    if kind == "linear":
        return Arg(torch.nn.Linear(4, 3), BAD, kind=kind, words=(name,))
    sizes = {"deep": (4, 3, 3, 3), "shallow": (4, 3)}.get(kind, (4, 5, 3))
    act = "relu" if kind.startswith("relu") or kind in ("deep", "shallow") else "tanh"
    if relu and kind == "tanh64":
        act = "tanh"
    net = local.MLP(sizes, act, generator=g, dtype=torch.float32 if kind == "relu32" else torch.float64)
    verdict = OK
    if kind == "nan":
        with torch.no_grad():
            net.layers[0].weight[0, 0] = math.nan
        verdict = BAD
    if relu and act != "relu":
        verdict = BAD
    return Arg(net, verdict, kind=kind, nonfinite=kind == "nan", words=(name, "relu"))


def _x(data, net, name="x", width=None):
    dtype = net.dtype if isinstance(net, local.MLP) else torch.float64
    d0 = (net.sizes[0] if isinstance(net, local.MLP) else 4) if width is None else width
    dtypes = {torch.float64: OK if dtype == torch.float64 else BAD, torch.float32: OK if dtype == torch.float32 else BAD,
              torch.float16: BAD, torch.int64: BAD, torch.bool: BAD}
    return draw_tensor(data, shapes=[(3, d0), (1, d0), (0, d0), (3, d0 + 1), (d0,), (3, d0, 1)], dtypes=dtypes,
                       empty=BAD, name=name, lo=-2, hi=2,
                       shape_verdict=lambda s: OK if len(s) == 2 and s[1] == d0 and s[0] >= 1 else BAD)


def _y(data, batch, n_classes, name="y"):
    kind = data.draw(st.sampled_from(["good", "good", "high", "negative", "float", "short", "2d", "list"]))
    g = torch.Generator().manual_seed(1)
    good = torch.randint(0, n_classes, (batch,), generator=g)
    value, verdict = {"good": (good, OK), "high": (good + n_classes, BAD), "negative": (good - n_classes, BAD),
                      "float": (good.double(), BAD), "short": (good[:-1], BAD),
                      "2d": (good.reshape(batch, 1), BAD), "list": (good.tolist(), BAD)}[kind]
    return Arg(value, verdict, kind=kind, words=(name,))


def _batch(x: Arg) -> int:
    v = x.value
    return v.shape[0] if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] > 0 else 3


def _feedback(data, net, direct):
    kind = data.draw(st.sampled_from(["good", "good", "other", "short", "tensor", "float16", "nan", "transposed"]))
    if not isinstance(net, local.MLP):
        return Arg(local.feedback_matrices((4, 5, 3), direct=direct, dtype=torch.float64), MAYBE,
                   words=("feedback",))
    fb = local.feedback_matrices(net.sizes, direct=direct, generator=torch.Generator().manual_seed(2),
                                 dtype=net.dtype)
    if not fb:  # no hidden layer: only the empty list fits
        return Arg([] if kind != "tensor" else torch.zeros(1), OK if kind != "tensor" else BAD, words=("feedback",))
    other = local.feedback_matrices(net.sizes, direct=not direct, dtype=net.dtype)
    same = all(a.shape == b.shape for a, b in zip(fb, other))
    value, verdict = {"good": (fb, OK), "other": (other, OK if same else BAD), "short": (fb[:-1], BAD),
                      "tensor": (fb[0], BAD), "float16": ([b.half() for b in fb], BAD),
                      "nan": ([b * math.nan for b in fb], BAD),
                      "transposed": ([b.T for b in fb], OK if all(b.shape[0] == b.shape[1] for b in fb) else BAD),
                      }[kind]
    return Arg(value, verdict, kind=kind, nonfinite=kind == "nan", words=("feedback",))


def _check_grads(net):
    def check(grads):
        params = list(net.parameters())
        assert len(grads) == len(params)
        for g, p in zip(grads, params):
            assert g.shape == p.shape and g.dtype == p.dtype
            assert_finite(g)
    return check


# ---------------------------------------------------------------- the network

@FUZZ
@given(st.data())
def test_mlp(data):
    sizes = _sizes(data)
    act = Arg(*data.draw(st.sampled_from([("tanh", OK), ("relu", OK), ("sigmoid", BAD), (None, BAD)])))
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(LOCAL_DTYPES)))
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))
    net = expect(local.MLP, {"sizes": sizes, "activation": act, "generator": gen, "dtype": dtype,
                             "device": device})
    if net is None:
        return
    assert [layer.in_features for layer in net.layers] == list(sizes.value[:-1])
    x = _x(data, net)

    def check(out):
        hs, logits = out
        assert len(hs) == len(net.layers) and logits.shape == (x.value.shape[0], net.sizes[-1])
        for h in hs + [logits]:
            assert_finite(h)
        assert torch.equal(net(x.value), logits)

    expect(net.trace, {"x": x}, check)


@FUZZ
@given(st.data())
def test_output_error(data):
    logits = draw_tensor(data, shapes=[(3, 4), (1, 1), (2, 5), (0, 3), (3,), (2, 0)], empty=BAD, name="logits",
                         shape_verdict=lambda s: OK if len(s) == 2 and min(s) >= 1 else BAD)
    v = logits.value
    shaped = isinstance(v, torch.Tensor) and v.ndim == 2 and min(v.shape) >= 1
    y = _y(data, v.shape[0] if shaped else 3, v.shape[1] if shaped else 4)

    def check(e):
        assert e.shape == logits.value.shape and e.dtype == logits.value.dtype
        assert_finite(e)
        assert torch.allclose(e.double().sum(1), torch.zeros(e.shape[0], dtype=torch.float64), atol=1e-2)

    expect(local.output_error, {"logits": logits, "y": y}, check)


@FUZZ
@given(st.data(), st.sampled_from(["backprop", "fa", "dfa", "drtp"]))
def test_feedback_methods(data, method):
    net = _net_arg(data)
    x = _x(data, net.value)
    n_classes = net.value.sizes[-1] if isinstance(net.value, local.MLP) else 3
    y = _y(data, _batch(x), n_classes)
    args = {"net": net, "x": x, "y": y}
    if method != "backprop":
        args["feedback"] = _feedback(data, net.value, direct=method != "fa")
    out = expect(getattr(local, f"{method}_grads"), args,
                 _check_grads(net.value) if isinstance(net.value, local.MLP) else None)
    if out is not None and method == "fa" and net.value.dtype == torch.float64:
        exact = local.fa_grads(net.value, x.value, y.value, [la.weight.T for la in net.value.layers[1:]])
        for a, b in zip(exact, local.backprop_grads(net.value, x.value, y.value)):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@FUZZ
@given(st.data())
def test_feedback_matrices(data):
    sizes = _sizes(data)
    direct = Arg(*data.draw(st.sampled_from([(True, OK), (False, OK), (1, BAD), ("yes", BAD)])))
    scale = draw_number(data, "scale", st.floats(0.1, 3.0), bad=(0.0, -1.0), wrong=("1", None, [1.0], True))
    gen = _gen(_checked_generator(data))
    dtype = Arg(*data.draw(st.sampled_from(LOCAL_DTYPES)))
    device = Arg(*data.draw(st.sampled_from(DEVICE_ARGS)))

    def check(out):
        d = sizes.value
        assert [tuple(b.shape) for b in out] == [(d[i + 1], d[-1] if direct.value else d[i + 2])
                                                  for i in range(len(d) - 2)]
        for b in out:
            assert_finite(b)

    expect(local.feedback_matrices, {"sizes": sizes, "direct": direct, "scale": scale, "generator": gen,
                                     "dtype": dtype, "device": device}, check)


# ---------------------------------------------------------------- local losses

@FUZZ
@given(st.data())
def test_local_losses(data):
    net = _net_arg(data)
    gen = _gen(_checked_generator(data))
    heads_arg = expect(local.aux_heads, {"net": net, "generator": gen})
    if heads_arg is None:
        return
    d = net.value.sizes
    assert [(h.in_features, h.out_features) for h in heads_arg] == [(w, d[-1]) for w in d[1:-1]]
    kind = data.draw(st.sampled_from(["good", "good", "list", "short", "wrong width", "float32", "one", "nan"]))
    heads = {"good": (heads_arg, OK), "list": (list(heads_arg), OK), "short": (heads_arg[:-1], BAD),
             "wrong width": ([torch.nn.Linear(w + 1, d[-1], dtype=net.value.dtype) for w in d[1:-1]], BAD),
             "float32": ([torch.nn.Linear(w, d[-1], dtype=torch.float16) for w in d[1:-1]], BAD),
             "one": (heads_arg[0] if len(heads_arg) else "head", BAD), "nan": (None, BAD)}[kind]
    if kind == "nan":
        heads = ([torch.nn.Linear(w, d[-1], dtype=net.value.dtype) for w in d[1:-1]], BAD)
        for h in heads[0]:
            torch.nn.init.constant_(h.weight, math.nan)
    if not heads_arg and kind in ("short", "wrong width", "float32", "nan"):
        heads = ([], OK)  # no hidden layers: every empty list is right
    heads = Arg(*heads, kind=kind, nonfinite=kind == "nan" and bool(heads_arg), words=("heads",))
    x = _x(data, net.value)
    y = _y(data, _batch(x), d[-1])

    def check(out):
        net_g, head_g = out
        _check_grads(net.value)(net_g)
        assert len(head_g) == 2 * len(heads_arg)
        for g in head_g:
            assert_finite(g)

    expect(local.local_loss_grads, {"net": net, "heads": heads, "x": x, "y": y}, check)


# ---------------------------------------------------------------- forward-forward

@FUZZ
@given(st.data())
def test_ff_input(data):
    x = draw_tensor(data, shapes=[(3, 4), (1, 2), (0, 3), (3,), (2, 0)], empty=BAD, name="x",
                    dtypes={torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.int64: BAD},
                    shape_verdict=lambda s: OK if len(s) == 2 and min(s) >= 1 else BAD)
    n_classes = draw_number(data, "n_classes", st.integers(1, 5), bad=(0, -1, 2**17), wrong=(2.0, "3", None, True),
                            nonfinite=())
    k = n_classes.value if n_classes.verdict == OK else 3
    kind = data.draw(st.sampled_from(["tensor", "int", "int", "big int", "bool", "float"]))
    labels = _y(data, _batch(x), k, "labels") if kind == "tensor" else Arg(
        *{"int": (k - 1, OK), "big int": (k, BAD), "bool": (True, BAD), "float": (0.0, BAD)}[kind],
        words=("labels",))
    scale = draw_number(data, "label_scale", st.floats(0.1, 5.0), bad=(0.0, -2.0), wrong=("1", None, True))

    def check(out):
        assert out.shape == (x.value.shape[0], x.value.shape[1] + k) and out.dtype == x.value.dtype
        assert torch.equal(out[:, : x.value.shape[1]], x.value)
        assert_finite(out)

    expect(local.ff_input, {"x": x, "labels": labels, "n_classes": n_classes, "label_scale": scale}, check)


@FUZZ
@given(st.data(), st.sampled_from(["goodness", "grads", "predict"]))
def test_forward_forward(data, which):
    net = _net_arg(data, relu=True)
    mlp = net.value if isinstance(net.value, local.MLP) else None
    if which == "predict":
        n_classes = draw_number(data, "n_classes", st.integers(1, 3), bad=(0, 4, 9), wrong=(2.0, None),
                                nonfinite=())
        width = mlp.sizes[0] - n_classes.value if mlp is not None and n_classes.verdict == OK else 2
        x = _x(data, mlp, width=width)
        scale = draw_number(data, "label_scale", st.floats(0.5, 3.0), bad=(0.0,), wrong=("1",))

        def check(out):
            assert out.shape == (x.value.shape[0],) and out.dtype == torch.int64
            assert int(out.min()) >= 0 and int(out.max()) < n_classes.value

        expect(local.ff_predict, {"net": net, "x": x, "n_classes": n_classes, "label_scale": scale}, check)
        return
    if which == "goodness":
        x = _x(data, mlp, "x")

        def check(out):
            assert out.shape == (x.value.shape[0], len(mlp.layers))
            assert_finite(out)
            assert bool((out >= 0).all())

        expect(local.ff_goodness, {"net": net, "x": x}, check)
        return
    x_pos = _x(data, mlp, "x_pos")
    x_neg = _x(data, mlp, "x_neg")
    if isinstance(x_pos.value, torch.Tensor) and isinstance(x_neg.value, torch.Tensor) and \
            x_pos.value.shape != x_neg.value.shape:
        for a in (x_pos, x_neg):
            a.verdict, a.words = BAD, ("x_pos", "x_neg")
    threshold = draw_number(data, "threshold", st.floats(-1.0, 5.0), wrong=("2", None, [2.0], True))
    expect(local.ff_grads, {"net": net, "x_pos": x_pos, "x_neg": x_neg, "threshold": threshold},
           _check_grads(mlp) if mlp is not None else None)


# ---------------------------------------------------------------- tools

@FUZZ
@given(st.data())
def test_set_grads(data):
    net = local.MLP((3, 2, 2), dtype=torch.float64)
    good = [torch.ones_like(p) for p in net.parameters()]
    kind = data.draw(st.sampled_from(["module", "list", "str", "tensor"]))
    params = Arg(*{"module": (net, OK), "list": (list(net.parameters()), OK), "str": ("net", BAD),
                   "tensor": (next(net.parameters()), BAD)}[kind], words=("params",))
    gk = data.draw(st.sampled_from(["good", "good", "short", "transposed", "float32", "nan", "ints", "tuple"]))
    grads = Arg(*{"good": (good, OK), "short": (good[:-1], BAD), "transposed": ([good[0].T] + good[1:], BAD),
                  "float32": ([g.float() for g in good], BAD), "nan": ([good[0] * math.nan] + good[1:], BAD),
                  "ints": ([g.long() for g in good], BAD), "tuple": (tuple(good), OK)}[gk],
                nonfinite=gk == "nan", words=("grads",))

    def check(out):
        assert out is None and all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), good))

    expect(local.set_grads, {"params": params, "grads": grads}, check)


@FUZZ
@given(st.data())
def test_cosine(data):
    u = draw_tensor(data, shapes=[(3,), (2, 2)], name="u", empty=BAD)
    shape = u.value.shape if isinstance(u.value, torch.Tensor) else (3,)
    v = draw_tensor(data, shapes=[shape, shape, (5,)], name="v", empty=BAD,
                    shape_verdict=lambda s: OK if s == shape else BAD)
    for a in (u, v):
        if isinstance(a.value, torch.Tensor) and a.value.is_floating_point() and a.value.numel() and \
                not bool(a.value.abs().max() > 0):
            a.verdict = BAD  # the zero vector has no direction
        if isinstance(a.value, list):
            a.verdict = BAD  # a list of floats, not of tensors
        a.words = ("u", "v")
    if data.draw(st.booleans()) and u.verdict == OK and v.verdict == OK:
        u.value, v.value = [u.value, u.value], [v.value, v.value]

    def check(c):
        assert isinstance(c, float) and -1 - 1e-9 <= c <= 1 + 1e-9

    expect(local.cosine, {"u": u, "v": v}, check)


@FUZZ
@given(st.data(), st.sampled_from(["stored", "extra"]))
def test_memory_counts(data, which):
    method = Arg(*data.draw(st.sampled_from([(m, OK) for m in local.METHODS] + [("bp", BAD), (None, BAD)])))
    sizes = _sizes(data)
    if sizes.value == (2**17, 2):
        sizes.verdict = OK  # nothing is allocated: any widths can be counted
    if which == "extra":
        out = expect(local.extra_weights, {"method": method, "sizes": sizes})
        assert out is None or (isinstance(out, int) and out >= 0)
        return
    batch = draw_number(data, "batch", st.integers(1, 300), bad=(0, -3), wrong=(2.0, "8", None, True),
                        nonfinite=(), huge=BAD)
    out = expect(local.stored_activations, {"method": method, "sizes": sizes, "batch": batch})
    if out is not None:
        assert isinstance(out, int) and out >= batch.value * max(sizes.value)


FUZZED = {local: {"MLP": test_mlp, "output_error": test_output_error, "backprop_grads": test_feedback_methods,
                  "feedback_matrices": test_feedback_matrices, "fa_grads": test_feedback_methods,
                  "dfa_grads": test_feedback_methods, "drtp_grads": test_feedback_methods,
                  "aux_heads": test_local_losses, "local_loss_grads": test_local_losses,
                  "ff_input": test_ff_input, "ff_goodness": test_forward_forward, "ff_grads": test_forward_forward,
                  "ff_predict": test_forward_forward, "set_grads": test_set_grads, "cosine": test_cosine,
                  "stored_activations": test_memory_counts, "extra_weights": test_memory_counts,
                  "METHODS": test_memory_counts}}


def test_every_public_name_is_fuzzed():
    assert set(FUZZED[local]) == set(local.__all__)
