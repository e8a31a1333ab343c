"""Bad input, Part II (chapter 8): every public name of ``lib.generalization`` and ``lib.ntk`` fuzzed.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): valid
arguments with none, one or two replaced by a value that must be refused, held
by :func:`expect` to the rule of ``tests/test_fuzz.py``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import generalization, ntk
from lib.data import modular_table
from tests.fuzzing import (FUZZ, QUICK, Fresh, Param, _boom, all_finite, count_bads, expect, mutated,
                           positive_bads, tensor_bads)


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()


def xs():
    return torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)


def ys():
    return torch.tensor([0, 1, 1, 0])


MODEL_BADS = [None, "model", Fresh(lambda: (lambda x: x), "a plain function")]


@QUICK
@given(st.data())
def test_per_example_gradients(data):
    args = mutated(data, {
        "model": Param(small_model, MODEL_BADS),
        "x": Param(xs, tensor_bads(xs, [(3, 3)])),
        "y": Param(ys, [Fresh(lambda: ys()[:2], "short y"), None, "y"]),
        "loss_fn": Param(lambda: torch.nn.functional.cross_entropy,
                         [_boom, "loss", Fresh(lambda: (lambda o, t: o.sum(1) * math.nan), "nan loss"),
                          Fresh(lambda: (lambda o, t: o), "non-scalar loss")]),
        "chunk_size": Param(lambda: None, [0, -1, 1.5, "2"], maybe=[1, 2]),
    })

    def check(G):
        assert G.shape == (4, 3 * 4 + 4 + 4 * 2 + 2)
        all_finite(G)

    expect(generalization.per_example_gradients, args, check)


def grads():
    return torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]], dtype=torch.float64)


@FUZZ
@given(st.data())
def test_coherence(data):
    args = mutated(data, {"G": Param(grads, tensor_bads(grads, [(3,), (0, 2)]) + [Fresh(lambda: torch.zeros(3, 2), "zeros")])})

    def check(a):
        G = args["G"].value.double()
        ref = G.mean(0).square().sum() / G.square().sum(1).mean()
        assert torch.allclose(a.double(), ref)

    expect(generalization.coherence, args, check)


@FUZZ
@given(st.data())
def test_modular_mlp(data):
    args = mutated(data, {
        "p": Param(lambda: 5, count_bads(2)),
        "hidden": Param(lambda: 8, count_bads(1)),
        "generator": Param(lambda: None, ["seed", 0]),
        "device": Param(lambda: None, ["gpu", 0, "meta"]),
    })

    def check(model):
        assert model(torch.zeros(2, 10)).shape == (2, 5)

    expect(generalization.modular_mlp, args, check)


def split():
    return modular_table(5, train_fraction=0.5, seed=0)


@QUICK
@given(st.data())
def test_train_modular(data):
    args = mutated(data, {
        "model": Param(lambda: generalization.modular_mlp(5, 8, torch.Generator().manual_seed(0)), MODEL_BADS),
        "split": Param(split, [None, "split", Fresh(lambda: tuple(split())[:2], "a short tuple")]),
        "p": Param(lambda: 5, [1, 0, 2.5, "5", 3]),
        "steps": Param(lambda: 3, count_bads(0)),
        "lr": Param(lambda: 1e-2, positive_bads()),
        "weight_decay": Param(lambda: 1.0, [-1.0, math.nan, "1"]),
        "betas": Param(lambda: (0.9, 0.98), [(1.5, 0.9), (0.9,), "b", (math.nan, 0.9)]),
        "eval_every": Param(lambda: 1, count_bads(1)),
        "probe": Param(lambda: None, [_boom, "probe"]),
    })

    def check(out):
        assert set(out) >= {"step", "train_loss", "train_acc", "test_acc"}
        all_finite(out)

    expect(generalization.train_modular, args, check)


def emb():
    a = torch.arange(7, dtype=torch.float64)
    return torch.stack([torch.cos(2 * math.pi * a / 7), torch.sin(4 * math.pi * a / 7), a / 7])


@FUZZ
@given(st.data(), st.sampled_from(["fourier_spectrum", "fourier_concentration"]))
def test_fourier(data, which):
    args = mutated(data, {
        "W": Param(emb, tensor_bads(emb, [(7,), (3, 6)]), maybe=[Fresh(lambda: torch.zeros(3, 7), "zeros")]),
        "p": Param(lambda: 7, [1, 0, 8, 7.0, "7"]),
    })

    def check(out):
        all_finite(out)
        if which == "fourier_spectrum":
            zero_rows = args["W"].value.abs().sum(1) == 0  # documented: a zero row of W gives a zero row
            assert out.shape == (3, 4)
            assert torch.allclose(out.sum(1), torch.where(zero_rows, 0.0, 1.0).to(out.dtype))
        else:
            assert float(out) == 0.0 or 1 / 4 - 1e-9 <= float(out) <= 1 + 1e-9

    expect(getattr(generalization, which), args, check)


# ---------------------------------------------------------------- ntk

@QUICK
@given(st.data(), st.sampled_from(["jacobian", "empirical_ntk"]))
def test_jacobian_and_ntk(data, which):
    params = {
        "model": Param(small_model, MODEL_BADS),
        "chunk_size": Param(lambda: None, [0, -2, 1.5, "1"], maybe=[1, 3]),
    }
    if which == "jacobian":
        params["x"] = Param(xs, tensor_bads(xs))  # wrong shapes for the user's model: its own error
    else:
        params["x1"] = Param(xs, tensor_bads(xs))
        params["x2"] = Param(lambda: None, tensor_bads(lambda: xs()[:2], optional=True))
        params["layout"] = Param(lambda: "flat", ["matrix", None, 1])
    args = mutated(data, params)

    def check(out):
        all_finite(out)
        if which == "jacobian":
            assert out.shape == (4, 2, 26)
        else:
            n2 = 4 if args["x2"].value is None else args["x2"].value.shape[0]
            assert out.shape == (8, 2 * n2)

    expect(getattr(ntk, which), args, check)


def kern():
    return torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)


@FUZZ
@given(st.data())
def test_ntk_change(data):
    args = mutated(data, {
        "theta_t": Param(kern, tensor_bads(kern, [(2,), (3, 3)])),
        "theta_0": Param(lambda: kern() * 2, tensor_bads(kern, [(3, 3)]) + [Fresh(lambda: torch.zeros(2, 2), "zeros")]),
    })

    def check(out):
        assert out.shape == () and abs(float(out) - 0.5) < 1e-12

    expect(ntk.ntk_change, args, check)


@FUZZ
@given(st.data())
def test_ntk_linear(data):
    args = mutated(data, {
        "in_features": Param(lambda: 3, count_bads(1)),
        "out_features": Param(lambda: 2, count_bads(1)),
        "beta": Param(lambda: 0.1, [math.nan, "0.1", None, -math.inf]),
        "generator": Param(lambda: None, ["seed"]),
        "dtype": Param(lambda: torch.float64, [torch.int64, "float64"], maybe=[torch.float16]),
        "device": Param(lambda: None, ["gpu", 0]),
    })

    def check(layer):
        out = layer(torch.ones(5, 3, dtype=layer.weight.dtype))
        assert out.shape == (5, 2)

    expect(ntk.NTKLinear, args, check)


@FUZZ
@given(st.data())
def test_ntk_mlp(data):
    args = mutated(data, {
        "sizes": Param(lambda: (3, 8, 2), [(3,), (), (3, 0, 2), (3, 2.5), "32", None]),
        "activation": Param(lambda: "relu", ["gelu", None, 1], maybe=["tanh"]),
        "beta": Param(lambda: 0.1, [math.nan, "0.1"]),
        "generator": Param(lambda: None, ["seed"]),
        "dtype": Param(lambda: torch.float64, [torch.int64]),
        "device": Param(lambda: None, ["gpu"]),
    })

    def check(model):
        assert model(torch.ones(4, 3, dtype=torch.float64)).shape == (4, 2)

    expect(ntk.ntk_mlp, args, check)


def f0():
    return torch.tensor([0.0, 1.0], dtype=torch.float64)


@FUZZ
@given(st.data())
def test_kernel_flow(data):
    args = mutated(data, {
        "theta": Param(kern, tensor_bads(kern, [(2,), (3, 3)])),
        "f0": Param(f0, tensor_bads(f0, [(3,)])),
        "y": Param(lambda: torch.ones(2, dtype=torch.float64), tensor_bads(f0, [(3,)])),
        "t": Param(lambda: 0.5, [-1.0, math.nan, math.inf, "1", None, Fresh(lambda: torch.tensor([[0.5]]), "2-D t")],
                   maybe=[0.0, Fresh(lambda: torch.tensor([0.0, 1.0]), "times")]),
    })

    def check(out):
        all_finite(out)
        assert out.shape[-1] == 2

    expect(ntk.kernel_flow, args, check)


FUZZED = {
    generalization: {"per_example_gradients": test_per_example_gradients, "coherence": test_coherence,
                     "modular_mlp": test_modular_mlp, "train_modular": test_train_modular,
                     "fourier_spectrum": test_fourier, "fourier_concentration": test_fourier},
    ntk: {"jacobian": test_jacobian_and_ntk, "empirical_ntk": test_jacobian_and_ntk, "ntk_change": test_ntk_change,
          "NTKLinear": test_ntk_linear, "ntk_mlp": test_ntk_mlp, "kernel_flow": test_kernel_flow},
}
