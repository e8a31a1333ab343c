"""Bad input, Part VI (chapter 24): every public name of ``lib.guidance`` fuzzed with hypothesis.

Table-driven (``tests/fuzzing.py``: :class:`Param`, :func:`mutated`): valid arguments with
none, one or two replaced by a value that must be refused (or an unusual one that may be),
held by :func:`expect` to the rule of ``tests/test_fuzz.py``: a well-formed, finite result
or a ``ValueError``/``TypeError`` naming the argument; an exception raised by a user's
function (model, classifier, reward) reaches the caller unchanged. :data:`FUZZED` maps each
public name to its test (``tests/test_fuzz_coverage.py`` checks it is complete).
Suggested home: ``tests/test_fuzz_guidance.py``.
Run alone: ``cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_24.py -q -p no:cacheprovider``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import diffusion, guidance
from tests.fuzzing import (BAD, OK, FUZZ, QUICK, Fresh, Param, _boom, all_finite, count_bads, expect,
                           mutated, positive_bads, tensor_bads)

T = 10
SCHED = diffusion.NoiseSchedule.linear(T, 0.01, 0.3)


def xs():
    return torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(3, 2)


def labels():
    return torch.tensor([0, 1, -1])


def class_labels():
    return torch.tensor([0, 1, 1])


def good_model(x, t, labels=None):
    shift = 0.0 if labels is None else 0.1 * (labels >= 0).to(x.dtype)[:, None]
    return 0.5 * x + 0.01 * t.to(x.dtype)[:, None] + shift


def good_classifier(x, t):
    return torch.stack([x.sum(1), -x.sum(1)], dim=1) * (1 - t[:, None] / 20)


def good_reward(x):
    return -(x - 0.5).square().sum(1)


REAL_BADS = [math.nan, math.inf, None, "2", [1.0], True]
MODEL_BADS = [None, "unet", _boom, Fresh(lambda: (lambda x, t, l=None: x[:, :1]), "wrong shape"),
              Fresh(lambda: (lambda x, t, l=None: x * math.nan), "NaN eps"),
              Fresh(lambda: (lambda x, t, l=None: "eps"), "not a tensor"),
              Fresh(lambda: (lambda x, t, l=None: torch.zeros(x.shape, dtype=torch.int64)), "int eps")]
CLASSIFIER_BADS = [None, "clf", _boom, Fresh(lambda: (lambda x, t: x.sum(1)), "1-D logits"),
                   Fresh(lambda: (lambda x, t: x * math.nan), "NaN logits"),
                   Fresh(lambda: (lambda x, t: x[:, :1]), "one class"),
                   Fresh(lambda: (lambda x, t: torch.zeros(x.shape[0], 2, dtype=torch.int64)), "int logits")]
REWARD_BADS = [None, "r", _boom, Fresh(lambda: (lambda x: x.sum()), "scalar reward"),
               Fresh(lambda: (lambda x: torch.zeros(x.shape[0], dtype=x.dtype)), "constant reward"),
               Fresh(lambda: (lambda x: x.sum(1) * math.nan), "NaN reward"),
               Fresh(lambda: (lambda x: x), "per-pixel reward")]
LABEL_BADS = [Fresh(lambda: torch.tensor([0, 1]), "short"), Fresh(lambda: torch.zeros(3), "float labels"),
              Fresh(lambda: torch.tensor([0, -2, 1]), "below -1"), "labels", [0, 1, 0]]
SCHEDULE_BADS = [None, "linear"]
STEPS_BADS = count_bads(1) + [T + 1]
X_BADS = tensor_bads(xs, [(0, 2), ()]) + [Fresh(lambda: xs().half(), "float16")]
X2_BADS = tensor_bads(xs, [(0, 2), (), (3, 3)])  # a second tensor is cast to the first one's dtype
X2_MAYBE = [Fresh(lambda: xs().half(), "float16"), Fresh(lambda: xs().float(), "float32")]


def _sample_check(out):
    assert isinstance(out, torch.Tensor) and out.shape == (3, 2) and out.dtype == torch.float64
    all_finite(out)


# ---------------------------------------------------------------- combinations

@FUZZ
@given(st.data())
def test_saturation(data):
    args = mutated(data, {"x": Param(xs, X_BADS), "threshold": Param(lambda: 1.5, positive_bads(), maybe=[1e-300, 1e300])})

    def check(out):
        assert isinstance(out, float) and 0.0 <= out <= 1.0

    expect(guidance.saturation, args, check)


@FUZZ
@given(st.data())
def test_cfg_combine(data):
    args = mutated(data, {"cond": Param(xs, X_BADS), "uncond": Param(lambda: xs().flip(0), X2_BADS, maybe=X2_MAYBE),
                          "scale": Param(lambda: 3.0, REAL_BADS, maybe=[0.0, -1.0, 1e6])})

    def check(out):
        assert out.shape == (3, 2)
        all_finite(out)

    expect(guidance.cfg_combine, args, check)


@FUZZ
@given(st.data())
def test_eps_cond_uncond(data):
    args = mutated(data, {"model": Param(lambda: good_model, MODEL_BADS), "x_t": Param(xs, X_BADS),
                          "t": Param(lambda: 4, [-1, 1.5, None, "3"], maybe=[0, 10**6]),
                          "labels": Param(labels, LABEL_BADS + [None])})

    def check(out):
        assert len(out) == 2 and all(o.shape == (3, 2) for o in out)
        all_finite(out)

    expect(guidance.eps_cond_uncond, args, check)


@FUZZ
@given(st.data())
def test_classifier_guided_eps(data):
    args = mutated(data, {"eps": Param(xs, X2_BADS, maybe=X2_MAYBE), "x_t": Param(lambda: xs().flip(1), X_BADS),
                          "t": Param(lambda: 4, [T, -1, 1.5, None]), "classifier": Param(lambda: good_classifier,
                                                                                       CLASSIFIER_BADS),
                          "labels": Param(class_labels, LABEL_BADS + [None, Fresh(lambda: torch.tensor([0, 1, 2]),
                                                                                  "class out of range")]),
                          "scale": Param(lambda: 2.0, REAL_BADS, maybe=[0.0, -3.0]),
                          "schedule": Param(lambda: SCHED, SCHEDULE_BADS)})

    def check(out):
        assert out.shape == (3, 2)
        all_finite(out)

    expect(guidance.classifier_guided_eps, args, check)


@FUZZ
@given(st.data())
def test_project(data):
    args = mutated(data, {"v": Param(xs, X_BADS), "direction": Param(lambda: xs() + 0.3, X2_BADS,
                                                                    maybe=X2_MAYBE + [Fresh(lambda: torch.zeros(3, 2, dtype=torch.float64), "zero direction")])})

    def check(out):
        par, orth = out
        torch.testing.assert_close(par + orth, args["v"].value)
        all_finite(out)

    expect(guidance.project, args, check)


@FUZZ
@given(st.data())
def test_apg_combine(data):
    args = mutated(data, {"pred_c": Param(xs, X_BADS), "pred_u": Param(lambda: xs().flip(0), X2_BADS, maybe=X2_MAYBE),
                          "scale": Param(lambda: 6.0, REAL_BADS, maybe=[1.0, 0.0]),
                          "eta": Param(lambda: 0.0, REAL_BADS, maybe=[1.0, -2.0]),
                          "norm_threshold": Param(lambda: 2.5, [-1.0] + REAL_BADS, maybe=[0.0, 1e-300]),
                          "momentum": Param(lambda: -0.5, [1.0, -1.0, 2.0] + REAL_BADS, maybe=[0.0, 0.9]),
                          "running": Param(lambda: None, [Fresh(lambda: xs()[:1], "wrong shape"), "r",
                                                          Fresh(lambda: xs() * math.nan, "NaN running")],
                                           maybe=[Fresh(xs, "a running average")])})

    def check(out):
        guided, running = out
        assert guided.shape == (3, 2) and running.shape == (3, 2)
        all_finite(out)

    expect(guidance.apg_combine, args, check)


# ---------------------------------------------------------------- samplers

def _sampler_params(labels_bads=LABEL_BADS, labels_ok=labels):
    return {"model": Param(lambda: good_model, MODEL_BADS), "x_T": Param(xs, X_BADS),
            "schedule": Param(lambda: SCHED, SCHEDULE_BADS), "steps": Param(lambda: 4, STEPS_BADS, maybe=[1, T]),
            "labels": Param(labels_ok, labels_bads), "scale": Param(lambda: 3.0, REAL_BADS, maybe=[0.0, 1.0, -1.0]),
            "spacing": Param(lambda: "leading", ["even", None], maybe=["trailing", "linspace"])}


@QUICK
@given(st.data())
def test_cfg_sample(data):
    params = _sampler_params()
    params["adaptive_threshold"] = Param(lambda: None, [1.5, -2.0, math.nan, "0.9"], maybe=[0.99, -1.0, 1.0])
    params["grad_last"] = Param(lambda: None, [-1, 5, 2.0, "1"], maybe=[0, 2, 4])
    args = mutated(data, params)
    g, n = args["grad_last"].value, args["steps"].value
    if type(g) is int and type(n) is int and args["steps"].verdict != BAD and 0 <= g <= n:
        args["grad_last"].verdict = OK  # 5 is too many for the default 4 steps, not for steps = T
    expect(guidance.cfg_sample, args, _sample_check)


@QUICK
@given(st.data())
def test_classifier_guided_sample(data):
    params = _sampler_params(LABEL_BADS + [None, Fresh(lambda: torch.tensor([0, -1, 1]), "null label")], class_labels)
    params["classifier"] = Param(lambda: good_classifier, CLASSIFIER_BADS)
    args = mutated(data, params)
    expect(guidance.classifier_guided_sample, args, _sample_check)


@QUICK
@given(st.data())
def test_apg_sample(data):
    params = _sampler_params()
    params.update(eta=Param(lambda: 0.0, REAL_BADS, maybe=[1.0]),
                  norm_threshold=Param(lambda: 2.5, [-1.0] + REAL_BADS, maybe=[0.0]),
                  momentum=Param(lambda: -0.5, [1.0, -1.5] + REAL_BADS, maybe=[0.0]))
    args = mutated(data, params)
    expect(guidance.apg_sample, args, _sample_check)


@QUICK
@given(st.data())
def test_cfgpp_sample(data):
    args = mutated(data, _sampler_params())
    expect(guidance.cfgpp_sample, args, _sample_check)


# ---------------------------------------------------------------- noisy classifier, LoRA

@FUZZ
@given(st.data())
def test_noisy_classifier(data):
    args = mutated(data, {"dim": Param(lambda: 2, count_bads(1)), "n_classes": Param(lambda: 2, count_bads(2)),
                          "width": Param(lambda: 8, count_bads(1)), "emb": Param(lambda: 4, count_bads(1) + [3])})
    clf = expect(guidance.NoisyClassifier, args)
    if clf is None:
        return
    call = mutated(data, {"x_t": Param(lambda: xs().float(), [Fresh(lambda: torch.zeros(3, 5), "wrong width"), None, "x"]),
                          "t": Param(lambda: torch.tensor([0.0, 4.5, 9.0]),
                                     [Fresh(lambda: torch.tensor([1, 2, 3]), "int t"),
                                      Fresh(lambda: torch.zeros(2), "short t"), None])})

    def check(out):
        assert out.shape == (3, 2)
        all_finite(out)

    expect(clf.forward, call, check)


class OneLogit(torch.nn.Module):
    """A classifier with a single output: too few classes for the labels."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, x, t):
        return (x * self.w).sum(1, keepdim=True)


@QUICK
@given(st.data())
def test_train_noisy_classifier(data):
    def x0():
        return torch.randn(8, 2, generator=torch.Generator().manual_seed(0))

    args = mutated(data, {
        "classifier": Param(lambda: guidance.NoisyClassifier(dim=2, n_classes=2, width=8, emb=4),
                            [None, "clf", Fresh(OneLogit, "one logit")]),
        "x0": Param(x0, tensor_bads(x0, [(0, 2)])),
        "labels": Param(lambda: torch.arange(8) % 2, [None, Fresh(lambda: torch.full((8,), -1), "null labels"),
                                                      Fresh(lambda: torch.zeros(7, dtype=torch.int64), "short"),
                                                      Fresh(lambda: torch.full((8,), 5), "class 5 of 2")]),
        "schedule": Param(lambda: SCHED, SCHEDULE_BADS),
        "steps": Param(lambda: 2, count_bads(1)), "batch_size": Param(lambda: 4, count_bads(1)),
        "lr": Param(lambda: 1e-3, positive_bads()),
        "generator": Param(lambda: None, ["seed", 0], maybe=[Fresh(lambda: torch.Generator().manual_seed(1), "gen")]),
    })

    def check(losses):
        assert len(losses) == args["steps"].value and all(math.isfinite(v) for v in losses)

    expect(guidance.train_noisy_classifier, args, check)


@FUZZ
@given(st.data())
def test_lora_linear(data):
    args = mutated(data, {"base": Param(lambda: torch.nn.Linear(3, 2).double(), [None, "linear",
                                                                                Fresh(lambda: torch.nn.Conv1d(3, 2, 1), "conv")]),
                          "rank": Param(lambda: 1, [0, 3, 1.5, None]), "alpha": Param(lambda: 1.0, positive_bads()),
                          "generator": Param(lambda: None, ["seed", 1], maybe=[Fresh(lambda: torch.Generator().manual_seed(0), "gen")])})
    lora = expect(guidance.LoRALinear, args)
    if lora is None:
        return
    call = mutated(data, {"x": Param(lambda: torch.ones(4, 3, dtype=torch.float64),
                                     [Fresh(lambda: torch.ones(4, 2, dtype=torch.float64), "wrong width"), None, "x",
                                      Fresh(lambda: torch.ones(4, 3, dtype=torch.int64), "int x")])})

    def check(out):
        assert out.shape == (4, 2)
        all_finite(out)

    expect(lora.forward, call, check)


# ---------------------------------------------------------------- reward backpropagation

class Shift(torch.nn.Module):
    """good_model plus a learnable shift: a model with parameters to fine-tune."""

    def __init__(self):
        super().__init__()
        self.b = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))

    def forward(self, x, t, labels=None):
        return good_model(x, t, labels) + self.b


@QUICK
@given(st.data())
def test_reward_finetune(data):
    net = Shift()
    args = mutated(data, {
        "model": Param(lambda: net, MODEL_BADS),
        "params": Param(lambda: [net.b], [None, Fresh(lambda: net.b, "a bare tensor"), Fresh(lambda: [], "empty"),
                                         Fresh(lambda: [torch.zeros(2)], "no requires_grad"), Fresh(lambda: ["b"], "str"),
                                         Fresh(lambda: [torch.zeros(2, requires_grad=True)], "unused by the model")]),
        "reward": Param(lambda: good_reward, REWARD_BADS),
        "x_T": Param(xs, X_BADS), "schedule": Param(lambda: SCHED, SCHEDULE_BADS),
        "steps": Param(lambda: 3, STEPS_BADS), "labels": Param(lambda: None, LABEL_BADS, maybe=[Fresh(labels, "labels")]),
        "scale": Param(lambda: 1.0, REAL_BADS, maybe=[2.0]), "iters": Param(lambda: 2, count_bads(1)),
        "lr": Param(lambda: 1e-2, positive_bads()), "grad_last": Param(lambda: None, [-1, 4, "1"], maybe=[1]),
        "generator": Param(lambda: None, ["seed", 0], maybe=[Fresh(lambda: torch.Generator().manual_seed(2), "gen")]),
    })

    def check(hist):
        assert len(hist) == args["iters"].value and all(math.isfinite(v) for v in hist)

    expect(guidance.reward_finetune, args, check)


@QUICK
@given(st.data())
def test_optimize_initial_noise(data):
    args = mutated(data, {
        "model": Param(lambda: good_model, MODEL_BADS), "x_T": Param(xs, X_BADS),
        "reward": Param(lambda: good_reward, REWARD_BADS), "schedule": Param(lambda: SCHED, SCHEDULE_BADS),
        "steps": Param(lambda: 3, STEPS_BADS), "labels": Param(lambda: None, LABEL_BADS, maybe=[Fresh(labels, "labels")]),
        "scale": Param(lambda: 1.0, REAL_BADS, maybe=[3.0]), "iters": Param(lambda: 2, count_bads(1)),
        "lr": Param(lambda: 0.05, positive_bads()), "keep_norm": Param(lambda: True, [1, "yes", None], maybe=[False]),
    })

    def check(out):
        z, hist = out
        assert z.shape == (3, 2) and not z.requires_grad and len(hist) == args["iters"].value
        all_finite(z)
        if args["keep_norm"].value is True:
            torch.testing.assert_close(z.norm(dim=1), args["x_T"].value.norm(dim=1))

    expect(guidance.optimize_initial_noise, args, check)


FUZZED = {
    guidance: {"saturation": test_saturation, "cfg_combine": test_cfg_combine, "eps_cond_uncond": test_eps_cond_uncond,
               "classifier_guided_eps": test_classifier_guided_eps, "project": test_project,
               "apg_combine": test_apg_combine, "cfg_sample": test_cfg_sample,
               "classifier_guided_sample": test_classifier_guided_sample, "apg_sample": test_apg_sample,
               "cfgpp_sample": test_cfgpp_sample, "NoisyClassifier": test_noisy_classifier,
               "train_noisy_classifier": test_train_noisy_classifier, "LoRALinear": test_lora_linear,
               "reward_finetune": test_reward_finetune, "optimize_initial_noise": test_optimize_initial_noise},
}
