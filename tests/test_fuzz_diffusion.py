"""Bad input, Part VI: every public name of ``lib.diffusion`` and ``lib.denoiser`` fuzzed with hypothesis.

The rule and the machinery are those of ``tests/test_fuzz.py`` (shared in
``tests/fuzzing.py``): a call returns a well-formed, finite result or refuses the
offending argument by name with ``ValueError``/``TypeError``; an exception raised by
a user's function (the noise predictor ``model``) reaches the caller unchanged.
:data:`FUZZED` maps each public name to its test (``tests/test_fuzz_coverage.py``
checks it is complete). Suggested home: ``tests/test_fuzz_diffusion.py``.
Run alone: ``cd /work/main && .venv/bin/python -m pytest /tmp/author/fuzz_23.py -q -p no:cacheprovider``.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lib import denoiser, diffusion
from tests.fuzzing import (BAD, FUZZ, MAYBE, OK, QUICK, Arg, _boom, _checked_generator, _gen,
                           assert_finite, draw_number, draw_tensor, expect, small)

T = 10
SCHEDULE = diffusion.NoiseSchedule.linear(T, 0.01, 0.3)
X_DTYPES = {torch.float64: OK, torch.float32: OK, torch.float16: BAD, torch.bfloat16: BAD,
            torch.int64: BAD, torch.bool: BAD, torch.complex64: BAD}
X_SHAPES = [(3, 2), (2,), (1, 4), (2, 2, 2), (), (0, 2), (2, 0)]


def _x_verdict(shape):
    return BAD if len(shape) == 0 or math.prod(shape) == 0 else OK


def _x(data, name):
    return draw_tensor(data, shapes=X_SHAPES, dtypes=X_DTYPES, empty=BAD, name=name, shape_verdict=_x_verdict,
                       non_tensors=[None, [[1.0, 2.0]], 1.5, "x"])


def _like(data, x: Arg, name, optional=False):
    """A second tensor that should have x's shape and dtype (eps, noise, x_next)."""
    if optional and data.draw(st.booleans(), label=f"{name} none"):
        return Arg(None)
    if isinstance(x.value, torch.Tensor) and data.draw(st.integers(0, 3), label=f"{name} kind") > 0:
        shape = tuple(x.value.shape)
        dtypes = {torch.float64: OK, torch.float32: OK, torch.int64: BAD}
        return draw_tensor(data, shapes=[shape], dtypes=dtypes, empty=MAYBE, name=name,
                           non_tensors=[None, "eps"] if not optional else ["eps"])
    return draw_tensor(data, shapes=[(5,), (3, 3)], dtypes={torch.float64: OK}, name=name,
                       shape_verdict=lambda s: BAD, non_tensors=["eps"])


def _good_model(x, t, labels=None):
    return 0.5 * x + 0.01 * t.reshape((-1,) + (1,) * (x.ndim - 1))


MODEL_POOL = {
    "good": (_good_model, OK),
    "gaussian": (denoiser.GaussianEps(SCHEDULE, 0.3, 0.5), OK),
    "wrong shape": (lambda x, t, labels=None: x.reshape(-1)[:1], BAD),
    "nan": (lambda x, t, labels=None: x * math.nan, BAD),
    "not a tensor": (lambda x, t, labels=None: "eps", BAD),
    "int": (lambda x, t, labels=None: torch.zeros(x.shape, dtype=torch.int64), BAD),
    "boom": (_boom, BAD),
    "not callable": ("unet", BAD),
}


def _model(data):
    kind = data.draw(st.sampled_from(sorted(MODEL_POOL)), label="model")
    fn, verdict = MODEL_POOL[kind]
    return Arg(fn, verdict, raises=kind == "boom", nonfinite=kind == "nan", note=kind, kind=kind,
               words=("model", "func", "finite", "callable"))


def _labels(data, x: Arg):
    n = x.value.shape[0] if isinstance(x.value, torch.Tensor) and x.value.ndim >= 1 else 2
    kind = data.draw(st.sampled_from(["none", "none", "good", "null", "float", "short", "low", "list"]),
                     label="labels")
    value = {"none": None, "good": torch.arange(n) % 3, "null": torch.full((n,), -1),
             "float": torch.zeros(n), "short": torch.zeros(n + 1, dtype=torch.int64),
             "low": torch.full((n,), -2), "list": [0] * n}[kind]
    return Arg(value, OK if kind in ("none", "good", "null") else BAD, note=f"labels:{kind}",
               words=("labels", "int64", "shape"))


def _t(data, name, low=0, clean_ok=False):
    bad = (T, -2) + (() if clean_ok else (-1,))
    return draw_number(data, name, st.integers(-1 if clean_ok else 0, T - 1), bad=bad, wrong=(2.5, "3", None, True),
                       nonfinite=(), huge=BAD)


def _schedule_arg(data):
    return Arg(*data.draw(st.sampled_from([(SCHEDULE, OK), (SCHEDULE, OK), ("linear", BAD), (None, BAD)])),
               words=("schedule",))


def _check_sample(x: Arg, model: Arg):
    def check(out):
        assert isinstance(out, torch.Tensor) and out.shape == x.value.shape and out.dtype == x.value.dtype
        if small(x.value):
            assert_finite(out)
    return check


# ---------------------------------------------------------------- schedules


@FUZZ
@given(st.data())
def test_noise_schedule(data):
    how = data.draw(st.sampled_from(["init", "linear", "cosine"]))
    if how == "init":
        betas = draw_tensor(data, shapes=[(5,), (2,), (1,), (2, 2), (0,)], dtypes={torch.float64: OK, torch.float32: OK,
                                                                                 torch.int64: BAD, torch.bool: BAD},
                            lo=-0.5, hi=1.5, empty=BAD, name="betas",
                            non_tensors=[None, "0.1", [0.1, 0.2], [0.1, "a"], 0.1])
        v = betas.value
        if isinstance(v, torch.Tensor) and betas.verdict != BAD and v.is_floating_point():
            if v.ndim != 1 or v.numel() < 2 or not bool(((v > 0) & (v < 1)).all()):
                betas.verdict = BAD
            elif bool((v.double() < 1e-17).any()):
                betas.verdict = BAD  # 1 - beta == 1 in float64: the noise level cannot increase
            elif bool((v.double() < 1e-8).any()):
                betas.verdict = MAYBE  # near float64 resolution: refused or accepted, both are fine
        if isinstance(v, list):
            betas.verdict = OK if all(isinstance(b, float) for b in v) else BAD
        args, fn = {"betas": betas}, diffusion.NoiseSchedule
    elif how == "linear":
        args = {"T": draw_number(data, "T", st.integers(2, 50), bad=(1, 0), wrong=(10.0, "10", None), nonfinite=(),
                                 huge=None),
                "beta_start": draw_number(data, "beta_start", st.sampled_from([1e-4, 0.01]), bad=(0.0, -0.1, 1.0)),
                "beta_end": draw_number(data, "beta_end", st.sampled_from([0.02, 0.5]), bad=(1.0, 2.0))}
        for k in ("beta_start", "beta_end"):
            args[k].words = (k, "beta_start <= beta_end")
        fn = diffusion.NoiseSchedule.linear
    else:
        args = {"T": draw_number(data, "T", st.integers(2, 50), bad=(1,), wrong=(10.0, None), nonfinite=(), huge=None),
                "s": draw_number(data, "s", st.sampled_from([0.008, 0.1]), bad=(-0.5,)),
                "max_beta": draw_number(data, "max_beta", st.sampled_from([0.999, 0.5]), bad=(0.0, 1.0, 1.5))}
        fn = diffusion.NoiseSchedule.cosine

    def check(s):
        assert isinstance(s, diffusion.NoiseSchedule) and s.betas.dtype == torch.float64
        for name in ("betas", "alphas", "alphas_cumprod", "sigmas"):
            assert getattr(s, name).shape == (s.T,)
            assert_finite(getattr(s, name), name)
        assert bool((s.alphas_cumprod.diff() < 0).all()) and bool((s.sigmas.diff() > 0).all())
        assert s.abar(-1) == 1.0
        if s.betas.min() >= 1e-8:  # below that, log sigma steps near rounding make the inverse ill-conditioned
            u = torch.linspace(0, s.T - 1, 7, dtype=torch.float64)
            torch.testing.assert_close(s.t_of_sigma(s.sigma_at(u)), u, rtol=0, atol=1e-6)

    expect(fn, args, check)


@FUZZ
@given(st.data())
def test_ddim_timesteps(data):
    Tn = draw_number(data, "T", st.integers(2, 60), bad=(1, 0), wrong=(10.0, None, "5"), nonfinite=(), huge=None)
    steps = draw_number(data, "steps", st.integers(1, 60), bad=(0, -1), wrong=(2.0, None), nonfinite=(), huge=None)
    spacing = Arg(*data.draw(st.sampled_from([("leading", OK), ("trailing", OK), ("linspace", OK), ("uniform", BAD),
                                              (None, BAD)])), words=("spacing",))
    if isinstance(Tn.value, int) and isinstance(steps.value, int) and Tn.verdict == OK and steps.verdict == OK \
            and steps.value > Tn.value:
        steps.verdict = BAD

    def check(ts):
        assert ts.dtype == torch.int64 and ts.shape == (steps.value,)
        assert int(ts.min()) >= 0 and int(ts.max()) <= Tn.value - 1
        assert bool((ts.diff() <= 0).all())

    expect(diffusion.ddim_timesteps, {"T": Tn, "steps": steps, "spacing": spacing}, check)


# ---------------------------------------------------------------- forward process, steps, loss


@FUZZ
@given(st.data())
def test_q_sample(data):
    x0 = _x(data, "x0")
    n = x0.value.shape[0] if isinstance(x0.value, torch.Tensor) and x0.value.ndim >= 1 else 2
    kind = data.draw(st.sampled_from(["int", "tensor", "bad tensor", "float tensor", "short"]))
    t = {"int": _t(data, "t"), "tensor": Arg(torch.arange(n) % T), "bad tensor": Arg(torch.full((n,), T), BAD),
         "float tensor": Arg(torch.zeros(n), BAD), "short": Arg(torch.zeros(n + 1, dtype=torch.int64), BAD)}[kind]
    noise = _like(data, x0, "noise", optional=True)
    generator = _gen(_checked_generator(data)) if noise.value is None else Arg(None)
    args = {"x0": x0, "t": t, "schedule": _schedule_arg(data), "noise": noise, "generator": generator}
    expect(diffusion.q_sample, args, _check_sample(x0, None))


@FUZZ
@given(st.data(), st.sampled_from(["predict_x0", "eps_to_score"]))
def test_predict_x0_and_score(data, which):
    x = _x(data, "x_t" if which == "predict_x0" else "eps")
    t = _t(data, "t")
    if which == "predict_x0":
        args = {"x_t": x, "eps": _like(data, x, "eps"), "t": t, "schedule": _schedule_arg(data)}
        fn = diffusion.predict_x0
    else:
        args, fn = {"eps": x, "t": t, "schedule": _schedule_arg(data)}, diffusion.eps_to_score
    expect(fn, args, _check_sample(x, None))


@FUZZ
@given(st.data())
def test_ddpm_and_ddim_step(data):
    which = data.draw(st.sampled_from(["ddpm", "ddim"]))
    x = _x(data, "x_t")
    eps = _like(data, x, "eps")
    noise = _like(data, x, "noise", optional=True)
    generator = _gen(_checked_generator(data)) if noise.value is None else Arg(None)
    schedule = _schedule_arg(data)
    if which == "ddpm":
        variance = Arg(*data.draw(st.sampled_from([("small", OK), ("large", OK), ("fixed", BAD)])),
                       words=("variance",))
        args = {"x_t": x, "eps": eps, "t": _t(data, "t"), "schedule": schedule, "variance": variance,
                "noise": noise, "generator": generator}
        fn = diffusion.ddpm_step
    else:
        t, t_prev = _t(data, "t", clean_ok=True), _t(data, "t_prev", clean_ok=True)
        eta = draw_number(data, "eta", st.sampled_from([0.0, 0.0, 0.5, 1.0]), bad=(-1.0,))
        if t.verdict == OK and t_prev.verdict == OK:
            if t.value == t_prev.value:
                t.verdict = t_prev.verdict = BAD
                t.words = t_prev.words = ("t and t_prev",)
            elif eta.verdict == OK and eta.value > 0 and t_prev.value > t.value:
                eta.verdict = BAD
                eta.words = ("eta > 0 needs t_prev < t",)
        args = {"x_t": x, "eps": eps, "t": t, "t_prev": t_prev, "schedule": schedule, "eta": eta,
                "noise": noise, "generator": generator}
        fn = diffusion.ddim_step
    expect(fn, args, _check_sample(x, None))


@FUZZ
@given(st.data())
def test_diffusion_loss(data):
    model, x0 = _model(data), _x(data, "x0")
    labels = _labels(data, x0)
    p = draw_number(data, "p_uncond", st.sampled_from([0.0, 0.3, 1.0]), bad=(-0.1, 1.5))
    generator = _gen(_checked_generator(data))
    if model.kind == "gaussian" and BAD not in (x0.verdict, labels.verdict):
        model.verdict = OK
    args = {"model": model, "x0": x0, "schedule": _schedule_arg(data), "labels": labels, "p_uncond": p,
            "generator": generator}

    def check(loss):
        assert loss.shape == () and loss.requires_grad is False or loss.shape == ()
        assert_finite(loss)
        assert float(loss) >= 0

    seen = {}

    def spy(x, t, labels=None):
        seen["labels"] = labels
        return model.value(x, t, labels)

    if model.kind in ("good", "gaussian") and labels.verdict == OK and labels.value is not None and p.value == 1.0:
        args["model"] = Arg(spy, OK)
        out = expect(diffusion.diffusion_loss, args, check)
        if out is not None:
            assert bool((seen["labels"] == diffusion.NULL_LABEL).all())  # NULL_LABEL marks dropped labels
        return
    expect(diffusion.diffusion_loss, args, check)


# ---------------------------------------------------------------- samplers


SAMPLERS = ["ddpm_sample", "ddim_sample", "ddim_invert", "bdia_sample", "bdia_invert", "probability_flow_ode"]


@QUICK
@given(st.data(), st.sampled_from(SAMPLERS))
def test_samplers(data, which):
    model = _model(data)
    name = {"ddpm_sample": "x_T", "ddim_sample": "x_T", "bdia_sample": "x_T", "ddim_invert": "x0",
            "bdia_invert": "x0", "probability_flow_ode": "x"}[which]
    x = _x(data, name)
    args = {"model": model, name: x, "schedule": _schedule_arg(data), "labels": _labels(data, x)}
    if which != "ddpm_sample" and which != "probability_flow_ode":
        steps = draw_number(data, "steps", st.integers(1, T), bad=(0, T + 1), wrong=(2.0, None), nonfinite=(),
                            huge=BAD)
        args["steps"] = steps
        args["spacing"] = Arg(*data.draw(st.sampled_from([("leading", OK), ("trailing", OK), ("even", BAD)])),
                              words=("spacing",))
    if which in ("ddpm_sample", "ddim_sample"):
        args["generator"] = _gen(_checked_generator(data))
    if which == "ddim_sample":
        args["eta"] = draw_number(data, "eta", st.sampled_from([0.0, 1.0]), bad=(-0.5,))
    if which == "ddpm_sample":
        args["variance"] = Arg(*data.draw(st.sampled_from([("small", OK), ("large", OK), ("big", BAD)])),
                               words=("variance",))
    if which == "bdia_sample":
        args["x_next"] = _like(data, x, "x_next", optional=True)
    if which == "probability_flow_ode":
        args["t_from"] = draw_number(data, "t_from", st.sampled_from([None, T - 1, 4.5, -1]), bad=(T, -0.5),
                                     wrong=("3",))
        args["t_to"] = draw_number(data, "t_to", st.sampled_from([-1, 0, 2.0]), bad=(T + 1, -3), wrong=("0",))
        args["method"] = Arg(*data.draw(st.sampled_from([("dopri5", OK), ("rk4", OK), ("leapfrog", BAD)])),
                             words=("method",))
        args["step_size"] = Arg(None if args["method"].value != "rk4" else 20.0)
        f, to = args["t_from"], args["t_to"]
        f_val = T - 1 if f.value is None else f.value
        if f.verdict == OK and to.verdict == OK and f_val == to.value:
            f.verdict = to.verdict = BAD
            f.words = to.words = ("t_from and t_to",)
    fn = getattr(diffusion, which)

    def check(out):
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            assert isinstance(o, torch.Tensor) and o.shape == x.value.shape and o.dtype == x.value.dtype
            assert_finite(o)

    expect(fn, args, check)


@FUZZ
@given(st.data())
def test_gaussian_eps(data):
    mean = draw_number(data, "mean", st.sampled_from([0.0, 1.5, -2.0]), wrong=("0", None, [1.0]))
    std = draw_number(data, "std", st.sampled_from([0.0, 0.3, 1.0]), bad=(-1.0,), wrong=("1", None))
    g = expect(denoiser.GaussianEps, {"schedule": _schedule_arg(data), "mean": mean, "std": std})
    if g is None:
        return
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.0, 3.5, 9.0, 1.0], dtype=torch.float64)
    eps = g(x, t)
    assert eps.shape == x.shape
    assert_finite(eps)
    y = g.ode_solution(x, 5.0, 0.0)
    assert y.shape == x.shape
    assert_finite(y)


# ---------------------------------------------------------------- denoiser


@FUZZ
@given(st.data())
def test_timestep_embedding(data):
    t = draw_tensor(data, shapes=[(3,), (1,), (2, 2), (), (0,)], dtypes={torch.float64: OK, torch.float32: OK,
                                                                        torch.int64: BAD, torch.bool: BAD},
                    lo=0, hi=99, name="t", shape_verdict=lambda s: OK if len(s) == 1 else BAD, empty=MAYBE,
                    non_tensors=[None, [1.0], 3.0])
    dim = draw_number(data, "dim", st.sampled_from([2, 8, 64]), bad=(3, 0, -2), wrong=(8.0, None), nonfinite=(),
                      huge=None)
    mp = draw_number(data, "max_period", st.sampled_from([10000.0, 10.0]), bad=(0.0, -1.0))

    def check(e):
        assert e.shape == (t.value.shape[0], dim.value) and e.dtype == t.value.dtype
        assert_finite(e)
        assert float(e.abs().max()) <= 1.0 + 1e-6 if e.numel() else True

    expect(denoiser.timestep_embedding, {"t": t, "dim": dim, "max_period": mp}, check)


@QUICK
@given(st.data(), st.sampled_from(["mlp", "cnn"]))
def test_networks(data, which):
    classes = draw_number(data, "num_classes", st.sampled_from([None, 3]), bad=(0, -1), wrong=(2.5, "3"),
                          nonfinite=(), huge=None)
    width = draw_number(data, "width", st.sampled_from([8, 16]), bad=(0,), wrong=(8.0, None), nonfinite=(), huge=None)
    emb = draw_number(data, "emb", st.sampled_from([8, 16]), bad=(7, 0), wrong=(8.0,), nonfinite=(), huge=None)
    cls = denoiser.ResidualMLP if which == "mlp" else denoiser.TinyCNN
    extra = {"dim": Arg(4)} if which == "mlp" else {"channels": Arg(1)}
    net = expect(cls, {"num_classes": classes, "width": width, "emb": emb, "depth": Arg(1), **extra})
    if net is None:
        return
    shapes = [(2, 4), (2, 2, 2), (3, 5)] if which == "mlp" else [(2, 1, 3, 3), (2, 2, 3, 3), (2, 9)]
    x = draw_tensor(data, shapes=shapes, dtypes={torch.float32: OK}, name="x_t", specials=False,
                    shape_verdict=lambda s: OK if s in ((2, 4), (2, 2, 2), (2, 1, 3, 3)) else BAD,
                    non_tensors=[None, "x"])
    t = Arg(*data.draw(st.sampled_from([(torch.tensor([0.0, 9.5]), OK), (torch.tensor([1, 2]), BAD),
                                        (torch.zeros(3), BAD), ("t", BAD)])), words=("t",))
    y = Arg(*data.draw(st.sampled_from([(None, OK), (torch.tensor([0, -1]), OK if classes.value else BAD),
                                        (torch.tensor([0, 5]), BAD), (torch.tensor([0.0, 1.0]), BAD)])),
            words=("labels", "unconditional"))
    if x.verdict == BAD:
        t.verdict = MAYBE if t.verdict == BAD else t.verdict
        y.verdict = MAYBE if y.verdict == BAD else y.verdict

    def check(out):
        assert out.shape == x.value.shape
        assert_finite(out)

    expect(net.forward, {"x_t": x, "t": t, "labels": y}, check)


@FUZZ
@given(st.data())
def test_ema_update(data):
    a = torch.nn.Linear(3, 2)
    b = Arg(*data.draw(st.sampled_from([(torch.nn.Linear(3, 2), OK), (torch.nn.Linear(2, 2), BAD), ("b", BAD)])),
            words=("model", "same parameters", "Modules"))
    decay = draw_number(data, "decay", st.sampled_from([0.0, 0.5, 0.999, 1.0]), bad=(-0.1, 1.5))
    expect(denoiser.ema_update, {"ema": Arg(a), "model": b, "decay": decay})
    assert_finite(a.weight.detach())


@QUICK
@given(st.data())
def test_train_denoiser(data):
    model = Arg(*data.draw(st.sampled_from([(None, OK), ("fn", BAD)])), words=("model",))
    model.value = denoiser.ResidualMLP(dim=2, width=8, depth=1, emb=8, num_classes=2) if model.value is None \
        else (lambda x, t: x)
    x0 = draw_tensor(data, shapes=[(6, 2), (0, 2), ()], dtypes={torch.float32: OK, torch.float64: MAYBE,
                                                               torch.int64: BAD},
                     name="x0", shape_verdict=lambda s: OK if s == (6, 2) else BAD, empty=BAD,
                     non_tensors=[None, "x"])
    labels = Arg(*data.draw(st.sampled_from([(None, OK), (torch.arange(6) % 2, OK), (torch.full((6,), -1), BAD),
                                             (torch.zeros(5, dtype=torch.int64), BAD)])),
                 words=("labels", "class indices"))
    steps = draw_number(data, "steps", st.integers(1, 3), bad=(0,), wrong=(1.5, None), nonfinite=(), huge=None)
    bs = draw_number(data, "batch_size", st.sampled_from([4, 8]), bad=(0,), wrong=(4.0,), nonfinite=(), huge=None)
    lr = draw_number(data, "lr", st.sampled_from([1e-3]), bad=(0.0, -1.0))
    ema_decay = draw_number(data, "ema_decay", st.sampled_from([0.0, 0.9]), bad=(1.0, -0.5))
    generator = _gen(_checked_generator(data))

    def check(out):
        ema, losses = out
        assert len(losses) == steps.value and all(math.isfinite(v) for v in losses)
        assert not ema.training

    expect(denoiser.train_denoiser, {"model": model, "x0": x0, "schedule": _schedule_arg(data), "labels": labels,
                                     "steps": steps, "batch_size": bs, "lr": lr, "ema_decay": ema_decay,
                                     "generator": generator}, check)


FUZZED = {
    diffusion: {"NULL_LABEL": test_diffusion_loss, "NoiseSchedule": test_noise_schedule,
                "q_sample": test_q_sample, "predict_x0": test_predict_x0_and_score,
                "eps_to_score": test_predict_x0_and_score, "diffusion_loss": test_diffusion_loss,
                "ddpm_step": test_ddpm_and_ddim_step, "ddpm_sample": test_samplers,
                "ddim_timesteps": test_ddim_timesteps, "ddim_step": test_ddpm_and_ddim_step,
                "ddim_sample": test_samplers, "ddim_invert": test_samplers, "bdia_sample": test_samplers,
                "bdia_invert": test_samplers, "probability_flow_ode": test_samplers},
    denoiser: {"timestep_embedding": test_timestep_embedding, "ResidualMLP": test_networks, "TinyCNN": test_networks,
               "GaussianEps": test_gaussian_eps,
               "ema_update": test_ema_update, "train_denoiser": test_train_denoiser},
}
