"""Bad input, Part VI (chapter 26): every public name of ``lib.distill_gen`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised by a
user's function (a sampler, a noise predictor, a generator) reaches the caller
unchanged. :data:`FUZZED` maps each public name to its test
(``tests/test_fuzz_coverage.py`` checks it is complete). Suggested home:
``tests/test_fuzz_distill_gen.py``.

Run alone with:
  cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_26.py -q -p no:cacheprovider
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, Fresh, Param, _boom, all_finite,  # noqa: F401
                           assert_finite, count_bads, expect, mutated, positive_bads, tensor_bads)

from lib import diffusion as D
from lib import distill_gen as dg

F64 = torch.float64
SCHED = D.NoiseSchedule.linear(8, 0.01, 0.3)


class GaussEps:
    """The exact noise predictor of data N(mean, std^2 I)."""

    def __init__(self, mean=0.3, std=0.5):
        self.mean, self.std = mean, std

    def __call__(self, x, t, labels=None):
        sig = SCHED.sigma_at(t.to(x.dtype)).view(-1, *([1] * (x.ndim - 1)))
        return sig * (x * (1 + sig ** 2).sqrt() - self.mean) / (self.std ** 2 + sig ** 2)


class GaussianFake(nn.Module):
    """A learnable Gaussian noise predictor (a 'fake score' with two parameters)."""

    def __init__(self):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(2, dtype=F64))
        self.log_s = nn.Parameter(torch.zeros(2, dtype=F64))

    def forward(self, x, t, labels=None):
        sig = SCHED.sigma_at(t.to(x.dtype)).view(-1, 1)
        return sig * (x * (1 + sig ** 2).sqrt() - self.m) / (torch.exp(2 * self.log_s) + sig ** 2)


def _x(n=6):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(n), dtype=F64)


def _gen0():
    return torch.Generator().manual_seed(0)


def _linear():
    torch.manual_seed(0)
    return nn.Linear(2, 2).double()


def _args(data, params):
    """Half the draws all valid (so the checks of the results run often), half mutated."""
    if data.draw(st.booleans(), label="all valid"):
        return {name: Arg(p.make(), OK, words=p.words or (name,)) for name, p in params.items()}
    return mutated(data, params)


def _scalar_loss(out):
    assert isinstance(out, torch.Tensor) and out.numel() == 1 and out.requires_grad
    assert_finite(out)


# user functions: a bad one returns the wrong shape (twice the batch: wrong for every batch size), NaN,
# not a tensor, or raises
EPS_BADS = ("eps", _boom, Fresh(lambda: (lambda x, t, labels=None: torch.cat([x, x])), "wrong shape"),
            Fresh(lambda: (lambda x, t, labels=None: x * math.nan), "NaN"),
            Fresh(lambda: (lambda x, t, labels=None: "eps"), "not a tensor"))
MAP_BADS = ("f", _boom, Fresh(lambda: (lambda z: torch.cat([z, z])), "wrong shape"), Fresh(lambda: (lambda z: z * math.nan), "NaN"),
            Fresh(lambda: (lambda z: "x"), "not a tensor"))
STEP_BADS = ("ddim", _boom, Fresh(lambda: (lambda x, t, s: torch.cat([x, x])), "wrong shape"),
             Fresh(lambda: (lambda x, t, s: x * math.inf), "inf"))
X_BADS = tensor_bads(_x, wrong_shapes=[(), (0, 2)])
GEN = Param(_gen0, bad=("seed", 0), maybe=(None,))


# ---------------------------------------------------------------- teacher_pairs, regression_loss

PAIR_PARAMS = {
    "sampler": Param(lambda: (lambda z: 0.5 * z + 1.0), bad=MAP_BADS, words=("sampler",)),
    "noise": Param(_x, bad=X_BADS),
    "batch_size": Param(lambda: None, bad=(0, -5, 1.5, "3", True), maybe=(1, 4, 100)),
}


@FUZZ
@given(st.data())
def test_teacher_pairs(data):
    args = _args(data, PAIR_PARAMS)

    def check(out):
        z, x = out
        torch.testing.assert_close(x, 0.5 * z + 1.0)
        assert not x.requires_grad

    expect(dg.teacher_pairs, args, check)


REG_PARAMS = {
    "G": Param(lambda: (lambda z: 2.0 * z), bad=MAP_BADS, words=("G",)),
    "z": Param(_x, bad=X_BADS),
    "x": Param(lambda: _x(6) + 1, bad=tensor_bads(_x, wrong_shapes=[(3, 2), (), (6, 3)]), words=("x", "z and x", "G")),
}


@FUZZ
@given(st.data())
def test_regression_loss(data):
    args = _args(data, REG_PARAMS)

    def check(out):
        z, x = args["z"].value, args["x"].value
        assert out.shape == () and abs(out.item() - ((2 * z - x) ** 2).mean().item()) < 1e-10

    expect(dg.regression_loss, args, check)


# ---------------------------------------------------------------- ddim_solver

SOLVER_PARAMS = {
    "model": Param(GaussEps, bad=EPS_BADS, words=("model", "eps")),
    "schedule": Param(lambda: SCHED, bad=("linear", None)),
    "x": Param(_x, bad=X_BADS),
    "t": Param(lambda: 5, bad=(8, -1, 2.5, "5", None), maybe=(0, 7)),
    "t_prev": Param(lambda: 2, bad=(-2, 8, 1.5, "2", None), maybe=(-1, 5, 7), words=("t_prev", "t")),
}


@FUZZ
@given(st.data())
def test_ddim_solver(data):
    args = _args(data, SOLVER_PARAMS)
    model = args["model"]
    # building only checks that model is callable; a model that misbehaves fails at the first step
    build = {"model": Arg(model.value, BAD if isinstance(model.value, str) else OK, words=model.words),
             "schedule": args["schedule"]}
    step = expect(dg.ddim_solver, build)
    if step is None:
        return
    call = {k: args[k] for k in ("x", "t", "t_prev", "model")}
    if call["t"].value == call["t_prev"].value:
        call["t_prev"].verdict = BAD

    def check(out):
        assert out.shape == args["x"].value.shape
        assert_finite(out)

    expect(lambda x, t, t_prev, model: step(x, t, t_prev), call, check)


# ---------------------------------------------------------------- progressive and consistency distillation

def _common(index_name):
    return {
        "student": Param(GaussEps, bad=EPS_BADS, words=("student",)),
        "teacher_step": Param(lambda: dg.ddim_solver(GaussEps(0.0, 0.7), SCHED), bad=STEP_BADS, words=("teacher_step",)),
        "x0": Param(_x, bad=X_BADS),
        "schedule": Param(lambda: SCHED, bad=("linear", None)),
        "steps": Param(lambda: 2, bad=(0, 9, 1.5, "2", None, True), maybe=(1, 4, 5), words=("steps", "spacing")),
        "spacing": Param(lambda: "trailing", bad=("log", None, 3), maybe=("leading", "linspace"),
                         words=("spacing", "steps")),
        index_name: Param(lambda: None, bad=(-1, 7, 1.5, "0", True), maybe=(0, 1, 2), words=(index_name, "steps")),
        "noise": Param(lambda: None, bad=tensor_bads(_x, wrong_shapes=[(3, 2)], optional=True),
                       maybe=(Fresh(lambda: _x(6) * 0.5, "noise"),), words=("noise", "generator")),
        "generator": Param(_gen0, bad=("seed", 0), maybe=(None,), words=("generator", "noise")),
    }


PD_PARAMS = _common("i")
CD_PARAMS = dict(_common("n"), target=Param(lambda: None, bad=("ema",), maybe=(Fresh(GaussEps, "another model"),)))


@QUICK
@given(st.data())
def test_progressive_distillation_loss(data):
    args = _args(data, PD_PARAMS)
    expect(dg.progressive_distillation_loss, args, _scalar_loss_or_constant)


@QUICK
@given(st.data())
def test_consistency_distillation_loss(data):
    args = _args(data, CD_PARAMS)
    expect(dg.consistency_distillation_loss, args, _scalar_loss_or_constant)


def _scalar_loss_or_constant(out):
    """The student GaussEps has no parameters, so the loss is a finite 0-dim tensor without a graph."""
    assert isinstance(out, torch.Tensor) and out.shape == () and out.item() >= 0
    assert_finite(out)


# ---------------------------------------------------------------- distribution matching

DM_PARAMS = {
    "G": Param(_linear, bad=("f", _boom, Fresh(lambda: (lambda z: z * math.nan), "NaN"),
                             Fresh(lambda: (lambda z: "x"), "not a tensor"), Fresh(lambda: (lambda z: z.long()), "int64"),
                             Fresh(lambda: (lambda z: z[:3]), "wrong rows")),
               maybe=(Fresh(lambda: (lambda z: 2 * z[:, :1]), "one output column"),),  # legal, but the models expect 2
               words=("G", "real_eps", "fake_eps")),
    "real_eps": Param(GaussEps, bad=EPS_BADS, words=("real_eps",)),
    "fake_eps": Param(lambda: GaussEps(0.1, 0.9), bad=EPS_BADS, words=("fake_eps",)),
    "z": Param(_x, bad=X_BADS),
    "schedule": Param(lambda: SCHED, bad=("linear", None)),
    "t": Param(lambda: 3, bad=(8, -1, 2.5, "3", None, True, Fresh(lambda: torch.ones(6), "float times"),
                               Fresh(lambda: torch.tensor([1, 2]), "two times"),
                               Fresh(lambda: torch.full((6,), 9), "out of range")),
               maybe=(0, 7, Fresh(lambda: torch.arange(6), "one per sample"))),
    "weighting": Param(lambda: "kl", bad=("fkl", None), maybe=("dmd",)),
    "noise": Param(lambda: None, bad=tensor_bads(_x, wrong_shapes=[(3, 2)], optional=True),
                   maybe=(Fresh(lambda: _x(6) * 0.5, "noise"),), words=("noise", "generator")),
    "generator": Param(lambda: None, bad=("seed", 0), maybe=(Fresh(_gen0, "generator"),), words=("generator", "noise")),
}


@QUICK
@given(st.data())
def test_distribution_matching_loss(data):
    args = _args(data, DM_PARAMS)

    def check(out):
        assert isinstance(out, torch.Tensor) and out.shape == ()
        assert_finite(out)
        if isinstance(args["G"].value, nn.Module):
            out.backward()
            for p in args["G"].value.parameters():
                assert_finite(p.grad)

    expect(dg.distribution_matching_loss, args, check)


# ---------------------------------------------------------------- fit and train_distribution_matching

LOSS_KINDS = {"good": OK, "nan": BAD, "vector": BAD, "no graph": BAD, "str": BAD, "boom": BAD, "not callable": BAD}


def _loss_fn(kind, module):
    if kind == "not callable":
        return "loss"
    if kind == "boom":
        return _boom
    net = module if isinstance(module, nn.Module) and any(True for _ in module.parameters()) else _linear()
    x = _x(6)
    return {"good": lambda k: net(x).pow(2).mean(), "nan": lambda k: net(x).sum() * math.nan,
            "vector": lambda k: net(x).pow(2).mean(0), "no graph": lambda k: torch.ones(()),
            "str": lambda k: "loss"}[kind]


FIT_PARAMS = {
    "module": Param(_linear, bad=("net", Fresh(nn.ReLU, "no parameters"))),
    "steps": Param(lambda: 3, bad=count_bads(1)),
    "lr": Param(lambda: 0.01, bad=positive_bads()),
    "every": Param(lambda: 0, bad=(-1, 1.5, "1", None, True), maybe=(1, 2), words=("every", "snapshot")),
    "snapshot": Param(lambda: None, bad=("snap",), words=("snapshot", "every"),
                      maybe=(Fresh(lambda: (lambda: torch.ones(2)), "ones"), Fresh(lambda: (lambda: "x"), "str"),
                             Fresh(lambda: (lambda: torch.tensor(math.nan)), "NaN"))),
}


@QUICK
@given(st.data())
def test_fit(data):
    args = _args(data, FIT_PARAMS)
    kind = data.draw(st.sampled_from(sorted(LOSS_KINDS)), label="loss_fn") if data.draw(st.booleans()) else "good"
    args["loss_fn"] = Arg(_loss_fn(kind, args["module"].value), LOSS_KINDS[kind], raises=kind == "boom",
                          nonfinite=kind == "nan", note=kind, words=("loss_fn",))

    def check(out):
        losses, snaps = out
        assert len(losses) == args["steps"].value and all(math.isfinite(v) for v in losses)
        every = args["every"].value
        if every:
            assert snaps[0][0] == 0 and snaps[-1][0] == args["steps"].value
        else:
            assert snaps == []

    expect(dg.fit, args, check)


TDM_PARAMS = {
    "G": Param(_linear, bad=("G", Fresh(nn.ReLU, "no parameters"))),
    "real_eps": Param(GaussEps, bad=EPS_BADS, words=("real_eps",)),
    "fake_eps": Param(GaussianFake, bad=("fake", Fresh(GaussEps, "not a module"), Fresh(nn.ReLU, "no parameters"))),
    "schedule": Param(lambda: SCHED, bad=("linear", None)),
    "z_shape": Param(lambda: (2,), bad=(2, "2", (), (0,), (2.5,), None)),
    "steps": Param(lambda: 2, bad=count_bads(1)),
    "batch_size": Param(lambda: 8, bad=count_bads(1), maybe=(1,)),
    "lr": Param(lambda: 0.01, bad=positive_bads()),
    "lr_fake": Param(lambda: 0.01, bad=positive_bads()),
    "fake_steps": Param(lambda: 1, bad=count_bads(1), maybe=(2,)),
    "t_range": Param(lambda: None, bad=((5, 2), (0, 8), "ab", (1,), (0.5, 3), (-1, 3)), maybe=((0, 7), (3, 3))),
    "weighting": Param(lambda: "dmd", bad=("x", None), maybe=("kl",)),
    "every": Param(lambda: 0, bad=(-1, 1.5, "1", None), maybe=(1,), words=("every", "snapshot")),
    "snapshot": Param(lambda: None, bad=("snap",), words=("snapshot", "every"),
                      maybe=(Fresh(lambda: (lambda: torch.ones(2)), "ones"), Fresh(lambda: (lambda: 3), "int"))),
    "generator": Param(_gen0, bad=("seed", 0), maybe=(None,)),
}


@QUICK
@given(st.data())
def test_train_distribution_matching(data):
    args = _args(data, TDM_PARAMS)

    def check(out):
        losses_g, losses_f, snaps = out
        assert len(losses_g) == len(losses_f) == args["steps"].value
        all_finite((losses_g, losses_f))
        for p in args["G"].value.parameters():
            assert_finite(p.detach())

    expect(dg.train_distribution_matching, args, check)


FUZZED = {dg: {"teacher_pairs": test_teacher_pairs, "regression_loss": test_regression_loss,
               "ddim_solver": test_ddim_solver,
               "progressive_distillation_loss": test_progressive_distillation_loss,
               "consistency_distillation_loss": test_consistency_distillation_loss,
               "distribution_matching_loss": test_distribution_matching_loss, "fit": test_fit,
               "train_distribution_matching": test_train_distribution_matching}}
