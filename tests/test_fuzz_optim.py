"""Bad input, Part II (chapter 6): every public name of ``lib.optim`` fuzzed with hypothesis.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): valid
arguments with none, one or two replaced by a value that must be refused, held
by :func:`expect` to the rule of ``tests/test_fuzz.py``. An optimiser that
accepts its arguments takes three steps on a small problem; where torch has the
optimiser, the same steps of ``torch.optim`` are the reference.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import optim
from tests.fuzzing import (FUZZ, NUMBER_WRONG, Fresh, Param, all_finite, count_bads, expect, mutated,
                           positive_bads)

LR_WORDS = ("lr", "learning rate")
RATE = Param(lambda: 0.01, [-1.0, math.nan, math.inf, "0.1", None], maybe=[0.0], words=LR_WORDS)
BETAS = Param(lambda: (0.9, 0.999), [(1.0, 0.9), (0.9, -0.1), (math.nan, 0.9), (0.9,), "b", None],
              words=("beta", "betas"))
EPS = Param(lambda: 1e-8, [-1.0, math.nan, "e"], maybe=[0.0], words=("eps", "epsilon"))
WD = Param(lambda: 0.0, [-1.0, math.nan, "w"], maybe=[0.1], words=("weight_decay", "weight decay"))
NONNEG = lambda name: Param(lambda: 0.0, [-0.5, math.nan, "m"], words=(name,))  # noqa: E731


def problem():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([0.1, -0.1], dtype=torch.float64))
    return [w, b]


PARAMS_BADS = [None, "params", [], [1.0, 2.0], Fresh(lambda: [torch.ones(2).long()], "integer tensors")]
PARAMS_WORDS = ("params", "parameter", "optimize")

CONSTRUCTORS = {
    "SGD": ({"lr": RATE, "momentum": NONNEG("momentum"), "dampening": Param(lambda: 0.0, [math.nan, "d"]),
             "weight_decay": WD, "nesterov": Param(lambda: False, ["yes", None], maybe=[True])}, torch.optim.SGD),
    "Adam": ({"lr": RATE, "betas": BETAS, "eps": EPS, "weight_decay": WD,
              "amsgrad": Param(lambda: False, ["no"], maybe=[True])}, torch.optim.Adam),
    "AdamW": ({"lr": RATE, "betas": BETAS, "eps": EPS, "weight_decay": WD,
               "amsgrad": Param(lambda: False, ["no"], maybe=[True])}, torch.optim.AdamW),
    "Adagrad": ({"lr": RATE, "lr_decay": NONNEG("lr_decay"), "weight_decay": WD,
                 "initial_accumulator_value": NONNEG("initial_accumulator_value"), "eps": EPS}, torch.optim.Adagrad),
    "RMSprop": ({"lr": RATE, "alpha": Param(lambda: 0.99, [-0.1, math.nan, "a"]), "eps": EPS, "weight_decay": WD,
                 "momentum": NONNEG("momentum"), "centered": Param(lambda: False, ["c"], maybe=[True])},
                torch.optim.RMSprop),
    "AdamP": ({"lr": RATE, "betas": BETAS, "eps": EPS, "weight_decay": WD, "delta": NONNEG("delta"),
               "wd_ratio": NONNEG("wd_ratio")}, None),
    "EXAdam": ({"lr": RATE, "betas": BETAS, "eps": EPS, "weight_decay": WD,
                "dynamic_step": Param(lambda: False, ["d"], maybe=[True])}, None),
}


def _loss(params):
    w, b = params
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]], dtype=torch.float64)
    return ((x @ w + b).tanh() - 0.5).square().sum()


def _run(opt, params, steps=3):
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
    return [p.detach().clone() for p in params]


@FUZZ
@given(st.data(), st.sampled_from(sorted(CONSTRUCTORS)))
def test_optimizers(data, name):
    table, reference = CONSTRUCTORS[name]
    args = mutated(data, {"params": Param(problem, PARAMS_BADS, words=PARAMS_WORDS), **table})
    if name == "SGD" and args["nesterov"].value is True and args["momentum"].value == 0.0:
        args["nesterov"].verdict = "bad"  # torch's rule: Nesterov needs momentum and zero dampening
        args["nesterov"].words = ("Nesterov", "nesterov")
    opt = expect(getattr(optim, name), args)
    if opt is None:
        return
    ours = _run(opt, args["params"].value)
    all_finite(ours)
    if reference is not None:
        values = {k: a.value for k, a in args.items() if k != "params"}
        theirs_params = problem()
        theirs = _run(reference(theirs_params, foreach=False, **values), theirs_params)
        for a, b in zip(ours, theirs):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), f"{name} differs from torch.optim"


SCHEDULES = {
    "constant": {"t": 0, "lr": 0},
    "step_decay": {"t": 0, "lr": 0, "every": 1, "gamma": 0},
    "cosine": {"t": 0, "lr": 0, "total": 1, "lr_min": 0},
    "linear_warmup": {"t": 0, "lr": 0, "warmup": 1, "start_factor": 0},
    "linear_decay": {"t": 0, "lr": 0, "total": 1, "lr_min": 0},
    "warmup_cosine": {"t": 0, "lr": 0, "warmup": 1, "total": 1, "lr_min": 0},
}
VALID = {"t": 7, "lr": 0.1, "every": 5, "gamma": 0.5, "total": 20, "lr_min": 0.001, "warmup": 4,
         "start_factor": 0.1}
SCHEDULE_BADS = {"t": [-1, 1.5, "3", None, True], "lr": [-0.1, math.nan, math.inf, "0.1", None],
                 "every": count_bads(1), "gamma": [-0.5, math.nan, "g"], "total": count_bads(1),
                 "lr_min": [-1.0, math.nan, "m"], "warmup": [-1, 1.5, "w"], "start_factor": [-0.1, 1.5, math.nan]}


@FUZZ
@given(st.data(), st.sampled_from(sorted(SCHEDULES)))
def test_schedules(data, name):
    params = {k: Param(lambda k=k: VALID[k], SCHEDULE_BADS[k], words=(k,) + (("step",) if k == "t" else ()))
              for k in SCHEDULES[name]}
    args = mutated(data, params)

    def check(lr):
        assert isinstance(lr, float) and math.isfinite(lr) and lr >= 0
        assert lr <= max(args["lr"].value, args.get("lr_min", args["lr"]).value) + 1e-12

    expect(getattr(optim, name), args, check)


@FUZZ
@given(st.data())
def test_set_lr(data):
    opt_params = problem()
    args = mutated(data, {"optimizer": Param(lambda: optim.Adam(opt_params), ["opt", None, opt_params]),
                          "lr": Param(lambda: 0.05, positive_bads(zero_ok=True), words=LR_WORDS)})

    def check(out):
        assert out is None and all(g["lr"] == args["lr"].value for g in args["optimizer"].value.param_groups)

    expect(optim.set_lr, args, check)


@FUZZ
@given(st.data())
def test_iterate_average(data):
    args = mutated(data, {"params": Param(problem, [None, "p", [1.0], Fresh(lambda: [torch.ones(2).long()], "int")]),
                          "decay": Param(lambda: None, [1.0, -0.1, math.nan, "d"], maybe=[0.9, 0.0])})
    avg = expect(optim.IterateAverage, args)
    if avg is None:
        return
    params = args["params"].value
    avg.update()
    with torch.no_grad():
        for p in params:
            p.add_(1.0)
    avg.update()
    out = problem()
    avg.copy_to(out)
    decay = args["decay"].value
    shift = 0.5 if decay is None else 1 - decay
    for a, b in zip(out, problem()):
        assert torch.allclose(a, b + shift)
    bad = mutated(data, {"params": Param(problem, [None, Fresh(lambda: [torch.ones(3)], "wrong shapes"),
                                                   Fresh(lambda: problem()[:1], "too few")])})
    expect(avg.copy_to, bad)


@FUZZ
@given(st.data(), st.sampled_from(["gd_parameters", "heavy_ball_parameters", "nesterov_parameters"]))
def test_tuned_parameters(data, name):
    args = mutated(data, {"mu": Param(lambda: 0.5, [0.0, -1.0, 20.0, *NUMBER_WRONG, math.nan]),
                          "L": Param(lambda: 10.0, [0.1, -1.0, math.inf, *NUMBER_WRONG, math.nan])})

    def check(out):
        assert isinstance(out, tuple) and all(isinstance(v, float) and math.isfinite(v) for v in out)
        assert 0 <= out[-1] < 1  # a rate

    expect(getattr(optim, name), args, check)


FUZZED = {optim: {**{name: test_optimizers for name in CONSTRUCTORS},
                  **{name: test_schedules for name in SCHEDULES},
                  "set_lr": test_set_lr, "IterateAverage": test_iterate_average,
                  "gd_parameters": test_tuned_parameters, "heavy_ball_parameters": test_tuned_parameters,
                  "nesterov_parameters": test_tuned_parameters}}
