"""Tests of lib/guidance.py against independent references: closed-form scores of Gaussian data
(CFG is the score of p(x|c)^w p(x)^(1-w); classifier guidance at scale 1 is Bayes' rule), the DDIM
samplers of lib.diffusion driven by hand, the CFG++/CFG relation, finite differences (gradcheck) for
backpropagation through the sampler, torch.optim.Adam for the reward loops, and every error path."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import diffusion as D
from lib import guidance as G
from lib.denoiser import GaussianEps

F64 = torch.float64
SCHED = D.NoiseSchedule.linear(100, 1e-3, 0.2)  # the lab's schedule


class ClassGaussians:
    """``model(x, t, labels)``: exact eps of N(mu_y, s^2 I) for label y >= 0, of N(mu_null, s_null^2 I) for -1."""

    def __init__(self, schedule=SCHED, d=3, std=0.4, null_std=1.0, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.means = torch.randn(3, d, generator=g, dtype=F64)
        self.cond = [GaussianEps(schedule, m, std) for m in self.means]
        self.uncond = GaussianEps(schedule, self.means.mean(0), null_std)
        self.rows = []  # rows evaluated per call

    def __call__(self, x, t, labels=None):
        self.rows.append(x.shape[0])
        out = self.uncond(x, t)
        if labels is not None:
            for k, g in enumerate(self.cond):
                out = torch.where((labels == k).view((-1,) + (1,) * (x.ndim - 1)), g(x, t), out)
        return out

    def conditional(self, labels):
        return lambda x, t, _=None: self(x, t, labels)

    def unconditional(self, x, t, labels=None):
        return self.uncond(x, t)


def _abar(t):
    return 1 / (1 + SCHED.sigma_at(t) ** 2)


def _noise(shape, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ------------------------------------------------------------------ classifier-free guidance

@settings(max_examples=25, deadline=None)
@given(w=st.floats(-2, 12), t=st.integers(0, 99))
def test_cfg_is_the_score_of_the_tilted_gaussian(w, t):
    """eps_u + w (eps_c - eps_u) = -sqrt(1 - abar) grad log [p_t(x|c)^w p_t(x)^(1-w)], closed form."""
    d, (m_c, s_c), (m_u, s_u) = 4, (torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=F64), 0.3), (torch.zeros(4, dtype=F64), 1.2)
    x = _noise((6, d))
    tt = torch.full((6,), float(t), dtype=F64)
    eps_c, eps_u = GaussianEps(SCHED, m_c, s_c)(x, tt), GaussianEps(SCHED, m_u, s_u)(x, tt)
    ab = SCHED.abar(t)
    v_c, v_u = ab * s_c ** 2 + 1 - ab, ab * s_u ** 2 + 1 - ab  # variances of the noisy marginals
    precision = w / v_c + (1 - w) / v_u
    score = -(x * precision - (w * math.sqrt(ab) * m_c / v_c + (1 - w) * math.sqrt(ab) * m_u / v_u))
    torch.testing.assert_close(G.cfg_combine(eps_c, eps_u, w), -math.sqrt(1 - ab) * score, rtol=1e-9, atol=1e-9)


def test_eps_cond_uncond_is_one_batched_call():
    m = ClassGaussians()
    x, labels = _noise((5, 3)), torch.tensor([0, 1, 2, -1, 0])
    eps_c, eps_u = G.eps_cond_uncond(m, x, 40, labels)
    assert m.rows == [10]
    t = torch.full((5,), 40.0, dtype=F64)
    torch.testing.assert_close(eps_c, m(x, t, labels))
    torch.testing.assert_close(eps_u, m.uncond(x, t))


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_cfg_sample_scales_zero_one_and_in_between(spacing):
    m = ClassGaussians()
    x_T, labels = _noise((6, 3)), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(G.cfg_sample(m, x_T, SCHED, 10, labels, 1.0, spacing=spacing),
                               D.ddim_sample(m.conditional(labels), x_T, SCHED, 10, spacing=spacing))
    torch.testing.assert_close(G.cfg_sample(m, x_T, SCHED, 10, labels, 0.0, spacing=spacing),
                               D.ddim_sample(m.unconditional, x_T, SCHED, 10, spacing=spacing))
    torch.testing.assert_close(G.cfg_sample(m, x_T, SCHED, 10, None, 5.0, spacing=spacing),  # no labels: unconditional
                               D.ddim_sample(m.unconditional, x_T, SCHED, 10, spacing=spacing))
    ts = D.ddim_timesteps(100, 10, spacing).tolist() + [-1]
    x = x_T
    for t, t_prev in zip(ts[:-1], ts[1:]):
        tt = torch.full((6,), float(t), dtype=F64)
        x = D.ddim_step(x, m.uncond(x, tt) + 4.0 * (m(x, tt, labels) - m.uncond(x, tt)), t, t_prev, SCHED)
    torch.testing.assert_close(G.cfg_sample(m, x_T, SCHED, 10, labels, 4.0, spacing=spacing), x)


def test_cfg_sample_costs_one_call_per_step_at_scales_zero_and_one():
    m = ClassGaussians()
    x_T, labels = _noise((4, 3)), torch.tensor([0, 1, 2, 0])
    for scale, rows in ((1.0, 4), (0.0, 4), (3.0, 8)):
        m.rows.clear()
        G.cfg_sample(m, x_T, SCHED, 5, labels, scale)
        assert m.rows == [rows] * 5


def test_adaptive_guidance_switches_samples_off():
    m = ClassGaussians()
    x_T, labels = _noise((4, 3)), torch.tensor([0, 1, 2, 0])
    plain = G.cfg_sample(m, x_T, SCHED, 6, labels, 3.0)
    m.rows.clear()
    torch.testing.assert_close(G.cfg_sample(m, x_T, SCHED, 6, labels, 3.0, adaptive_threshold=1.0), plain)
    assert m.rows == [8] * 6  # a cosine never exceeds 1: every step guided
    m.rows.clear()
    out = G.cfg_sample(m, x_T, SCHED, 6, labels, 3.0, adaptive_threshold=-1.0)
    assert m.rows == [8] + [4] * 5  # after the first step every sample is plain conditional
    ts = D.ddim_timesteps(100, 6).tolist() + [-1]
    t0 = torch.full((4,), float(ts[0]), dtype=F64)
    x = D.ddim_step(x_T, m.uncond(x_T, t0) + 3.0 * (m(x_T, t0, labels) - m.uncond(x_T, t0)), ts[0], ts[1], SCHED)
    for t, t_prev in zip(ts[1:-1], ts[2:]):
        x = D.ddim_step(x, m(x, torch.full((4,), float(t), dtype=F64), labels), t, t_prev, SCHED)
    torch.testing.assert_close(out, x)


# ------------------------------------------------------------------ classifier guidance

class TwoClassMixture:
    """x0 ~ (1/2) N(mu, s^2 I) + (1/2) N(-mu, s^2 I): exact noisy classifier, unconditional and conditional eps."""

    def __init__(self, mu, s=0.3):
        self.mu, self.s = mu, s

    def _logits(self, x, t):
        ab = _abar(t.to(x.dtype)).view(-1, 1)
        var = ab * self.s ** 2 + 1 - ab
        return torch.stack([-((x - ab.sqrt() * m) ** 2).sum(1) / (2 * var[:, 0]) for m in (self.mu, -self.mu)], 1)

    def classifier(self, x, t):
        return self._logits(x, t)

    def eps_uncond(self, x, t, labels=None):
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (score,) = torch.autograd.grad(self._logits(z, t).logsumexp(1).sum(), z)
        return -(1 - _abar(t).view(-1, 1)).sqrt() * score

    def eps_cond(self, x, t, y):
        return torch.where((y == 0)[:, None], GaussianEps(SCHED, self.mu, self.s)(x, t),
                           GaussianEps(SCHED, -self.mu, self.s)(x, t))


@pytest.mark.parametrize("t", [3, 40, 90])
def test_classifier_guidance_at_scale_one_is_the_conditional_model(t):
    """Bayes' rule on scores: grad log p_t(x|y) = grad log p_t(x) + grad log p_t(y|x)."""
    mix = TwoClassMixture(torch.tensor([1.0, -0.5], dtype=F64))
    x, y = _noise((8, 2)), torch.tensor([0, 1] * 4)
    tt = torch.full((8,), float(t), dtype=F64)
    eps_u = mix.eps_uncond(x, tt)
    guided = G.classifier_guided_eps(eps_u, x, t, mix.classifier, y, 1.0, SCHED)
    torch.testing.assert_close(guided, mix.eps_cond(x, tt, y), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(G.classifier_guided_eps(eps_u, x, t, mix.classifier, y, 0.0, SCHED), eps_u)
    g3 = G.classifier_guided_eps(eps_u, x, t, mix.classifier, y, 3.0, SCHED)  # linear in the scale
    torch.testing.assert_close(g3, eps_u + 3.0 * (guided - eps_u))


def test_classifier_guided_sample_is_ddim_with_the_guided_eps():
    mix = TwoClassMixture(torch.tensor([1.0, -0.5], dtype=F64))
    x_T, y = _noise((6, 2)), torch.tensor([0, 1] * 3)
    out = G.classifier_guided_sample(mix.eps_uncond, mix.classifier, x_T, SCHED, 8, y, 1.0)
    ref = D.ddim_sample(lambda x, t: mix.eps_cond(x, t, y), x_T, SCHED, 8)
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-8)


# ------------------------------------------------------------------ APG

@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), shape=st.sampled_from([(3, 5), (2, 2, 3), (4, 1)]))
def test_project_splits_into_orthogonal_parts(seed, shape):
    v, d = _noise(shape, seed), _noise(shape, seed + 1)
    par, orth = G.project(v, d)
    torch.testing.assert_close(par + orth, v)
    vf, df = v.flatten(1), d.flatten(1)
    assert float((orth.flatten(1) * df).sum(1).abs().max()) < 1e-10
    ref = df * ((vf * df).sum(1) / (df * df).sum(1))[:, None]  # projection onto span{d}, per sample
    torch.testing.assert_close(par.flatten(1), ref)
    par32, orth32 = G.project(v.float(), d.float())
    assert par32.dtype == torch.float32 and torch.allclose(par32.double(), par, atol=1e-5)
    zero_par, zero_orth = G.project(v, torch.zeros_like(v))
    assert float(zero_par.abs().max()) == 0 and torch.equal(zero_orth, v)


def test_apg_combine_reduces_to_cfg_and_each_part_does_what_it_says():
    c, u = _noise((5, 6), 2), _noise((5, 6), 3)
    out, running = G.apg_combine(c, u, 7.0, eta=1.0)
    torch.testing.assert_close(out, G.cfg_combine(c, u, 7.0))
    torch.testing.assert_close(running, c - u)
    out0, _ = G.apg_combine(c, u, 7.0, eta=0.0)  # only the orthogonal part: the update is orthogonal to pred_c
    assert float(((out0 - c) * c).sum(1).abs().max()) < 1e-10
    _, orth = G.project(c - u, c)
    torch.testing.assert_close(out0, c + 6.0 * orth)
    capped, _ = G.apg_combine(c, u, 3.0, eta=1.0, norm_threshold=0.5)  # the cap: |update| <= r
    upd = (capped - c) / 2.0
    assert float(upd.norm(dim=1).max()) <= 0.5 + 1e-12
    big = (c - u).norm(dim=1) > 0.5
    torch.testing.assert_close(upd[big], ((c - u) / (c - u).norm(dim=1, keepdim=True) * 0.5)[big])
    prev = _noise((5, 6), 4)  # reverse momentum: running = D + beta * previous running
    out_m, run_m = G.apg_combine(c, u, 4.0, eta=1.0, momentum=-0.5, running=prev)
    torch.testing.assert_close(run_m, (c - u) - 0.5 * prev)
    torch.testing.assert_close(out_m, c + 3.0 * run_m)


def test_apg_sample_with_the_identity_settings_is_cfg_sample():
    m = ClassGaussians()
    x_T, labels = _noise((6, 3)), torch.tensor([0, 1, 2, 0, 1, 2])
    for w in (0.0, 1.0, 6.0):
        torch.testing.assert_close(G.apg_sample(m, x_T, SCHED, 10, labels, w, eta=1.0),
                                   G.cfg_sample(m, x_T, SCHED, 10, labels, w), rtol=1e-9, atol=1e-9)


def test_apg_sample_is_ddim_with_apg_on_the_clean_estimates():
    m = ClassGaussians()
    x_T, labels = _noise((6, 3)), torch.tensor([0, 1, 2, 0, 1, 2])
    ts = D.ddim_timesteps(100, 8).tolist() + [-1]
    x, running = x_T, None
    for t, t_prev in zip(ts[:-1], ts[1:]):
        tt = torch.full((6,), float(t), dtype=F64)
        x0_c, x0_u = D.predict_x0(x, m(x, tt, labels), t, SCHED), D.predict_x0(x, m.uncond(x, tt), t, SCHED)
        x0_g, running = G.apg_combine(x0_c, x0_u, 6.0, eta=0.2, norm_threshold=1.0, momentum=-0.5, running=running)
        ab = SCHED.abar(t)
        x = D.ddim_step(x, (x - math.sqrt(ab) * x0_g) / math.sqrt(1 - ab), t, t_prev, SCHED)
    out = G.apg_sample(m, x_T, SCHED, 8, labels, 6.0, eta=0.2, norm_threshold=1.0, momentum=-0.5)
    torch.testing.assert_close(out, x, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ CFG++

@pytest.mark.parametrize("lam", [0.0, 0.05, 0.3, 0.8, 1.0])
def test_cfgpp_is_cfg_with_the_step_dependent_scale(lam):
    """CFG++ with lambda = one CFG-DDIM step with w_t = lambda sigma_t / (sigma_t - sigma_prev) (Chung et al.)."""
    m = ClassGaussians()
    x_T, labels = _noise((6, 3)), torch.tensor([0, 1, 2, 0, 1, 2])
    ts = D.ddim_timesteps(100, 10).tolist() + [-1]
    sig = lambda t: 0.0 if t < 0 else float(SCHED.sigmas[t])  # noqa: E731
    x = x_T
    for t, t_prev in zip(ts[:-1], ts[1:]):
        tt = torch.full((6,), float(t), dtype=F64)
        w_t = lam * sig(t) / (sig(t) - sig(t_prev))
        x = D.ddim_step(x, m.uncond(x, tt) + w_t * (m(x, tt, labels) - m.uncond(x, tt)), t, t_prev, SCHED)
    torch.testing.assert_close(G.cfgpp_sample(m, x_T, SCHED, 10, labels, lam), x, rtol=1e-9, atol=1e-9)
    if lam == 0.0:
        torch.testing.assert_close(x, D.ddim_sample(m.unconditional, x_T, SCHED, 10))


# ------------------------------------------------------------------ backpropagation through the sampler

class TinyNet(torch.nn.Module):
    """A small nonlinear conditional eps-model in float64 (the sampler's Jacobians are not trivial)."""

    def __init__(self, d=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(0.3 * torch.randn(d, d, generator=g, dtype=F64))
        self.c = torch.nn.Parameter(0.2 * torch.randn(3, d, generator=g, dtype=F64))

    def forward(self, x, t, labels=None):
        e = self.c[torch.where(labels < 0, 2, labels)] if labels is not None else self.c[2]
        return x * (1 - t[:, None] / 200) + torch.tanh(x @ self.W + e) * 0.1 * (1 + t[:, None] / 100)


def test_gradients_through_the_sampler_match_finite_differences():
    net = TinyNet()
    labels = torch.tensor([0, 1, 0])
    x_T = _noise((3, 2), 5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: G.cfg_sample(net, z, SCHED, 5, labels, 3.0), (x_T,))

    def of_params(W, c):
        def model(x, t, lab):
            e = c[torch.where(lab < 0, 2, lab)]
            return x * (1 - t[:, None] / 200) + torch.tanh(x @ W + e) * 0.1 * (1 + t[:, None] / 100)
        return G.cfg_sample(model, x_T.detach(), SCHED, 5, labels, 3.0).square().sum()

    assert torch.autograd.gradcheck(of_params, (net.W.detach().clone().requires_grad_(True),
                                                net.c.detach().clone().requires_grad_(True)))


def test_truncated_backpropagation_keeps_only_the_last_steps():
    net, labels, x_T = TinyNet(), torch.tensor([0, 1, 0]), _noise((3, 2), 6).requires_grad_(True)
    full = G.cfg_sample(net, x_T, SCHED, 6, labels, 2.0)
    torch.testing.assert_close(G.cfg_sample(net, x_T, SCHED, 6, labels, 2.0, grad_last=6), full)
    assert not G.cfg_sample(net, x_T, SCHED, 6, labels, 2.0, grad_last=0).requires_grad
    out = G.cfg_sample(net, x_T, SCHED, 6, labels, 2.0, grad_last=2)
    (gW,) = torch.autograd.grad(out.sum(), net.W)
    assert torch.autograd.grad(out.sum(), x_T, allow_unused=True)[0] is None
    ts = D.ddim_timesteps(100, 6).tolist() + [-1]  # reference: the last two steps from a constant state
    with torch.no_grad():
        x = x_T.detach()
        for t, t_prev in zip(ts[:4], ts[1:5]):
            x = D.ddim_step(x, G.cfg_combine(*G.eps_cond_uncond(net, x, t, labels), 2.0), t, t_prev, SCHED)
    W = net.W.detach().clone().requires_grad_(True)

    def tail(W):
        y = x
        for t, t_prev in zip(ts[4:-1], ts[5:]):
            a = math.sqrt(SCHED.abar(t_prev) / SCHED.abar(t))
            b = math.sqrt(1 - SCHED.abar(t_prev)) - math.sqrt(SCHED.abar(t_prev) * (1 - SCHED.abar(t)) / SCHED.abar(t))
            tt = torch.full((3,), float(t), dtype=F64)
            e_c = y * (1 - tt[:, None] / 200) + torch.tanh(y @ W + net.c[labels]) * 0.1 * (1 + tt[:, None] / 100)
            e_u = y * (1 - tt[:, None] / 200) + torch.tanh(y @ W + net.c[2]) * 0.1 * (1 + tt[:, None] / 100)
            y = a * y + b * (e_u + 2.0 * (e_c - e_u))
        return y.sum()

    torch.testing.assert_close(gW, torch.autograd.grad(tail(W), W)[0])


def test_reward_finetune_is_adam_through_the_sampler():
    labels = torch.tensor([0, 1, 0, 1])
    reward = lambda x: -(x - 1.0).square().sum(1)  # noqa: E731
    x_T = _noise((4, 2), 7)
    net = TinyNet()
    hist = G.reward_finetune(net, [net.c], reward, x_T, SCHED, 5, labels=labels, scale=2.0, iters=6, lr=0.05,
                             generator=torch.Generator().manual_seed(8))
    ref = TinyNet()  # the same loop written out with torch.optim.Adam
    opt, gen, ref_hist, noise = torch.optim.Adam([ref.c], lr=0.05), torch.Generator().manual_seed(8), [], x_T
    for k in range(6):
        if k:
            noise = torch.randn(x_T.shape, generator=gen, dtype=F64)
        r = reward(G.cfg_sample(ref, noise, SCHED, 5, labels, 2.0))
        opt.zero_grad()
        (-r.mean()).backward()
        opt.step()
        ref_hist.append(float(r.detach().mean()))
    assert hist == pytest.approx(ref_hist, rel=1e-12)
    torch.testing.assert_close(net.c, ref.c)
    assert net.W.grad is None  # parameters outside params get no gradient
    torch.testing.assert_close(net.W, TinyNet().W)


def test_reward_finetune_raises_the_reward():
    net, labels = TinyNet(), torch.tensor([0, 1, 0, 1])
    reward = lambda x: -(x - 1.0).square().sum(1)  # noqa: E731
    hist = G.reward_finetune(net, list(net.parameters()), reward, _noise((4, 2), 9), SCHED, 5, labels=labels,
                             scale=2.0, iters=40, lr=0.05, generator=torch.Generator().manual_seed(1))
    assert sum(hist[-5:]) / 5 > sum(hist[:5]) / 5 + 0.5, hist


def test_initial_noise_step_follows_the_finite_difference_gradient():
    net, labels = TinyNet(), torch.tensor([0, 1, 0])
    net.requires_grad_(False)
    reward = lambda x: -(x - torch.tensor([1.0, -1.0], dtype=F64)).square().sum(1)  # noqa: E731
    x_T = _noise((3, 2), 10)
    z, hist = G.optimize_initial_noise(net, x_T, reward, SCHED, 5, labels=labels, scale=2.0, iters=1, lr=1e-3,
                                       keep_norm=False)
    h, fd = 1e-6, torch.zeros_like(x_T)  # central differences of the summed reward
    for i in range(3):
        for j in range(2):
            e = torch.zeros_like(x_T)
            e[i, j] = h
            f = lambda z: float(reward(G.cfg_sample(net, z, SCHED, 5, labels, 2.0)).sum())  # noqa: E731
            fd[i, j] = (f(x_T + e) - f(x_T - e)) / (2 * h)
    torch.testing.assert_close(z - x_T, 1e-3 * torch.sign(fd), rtol=1e-6, atol=1e-9)  # Adam's first step
    assert hist == pytest.approx([float(reward(G.cfg_sample(net, x_T, SCHED, 5, labels, 2.0)).mean())])


def test_initial_noise_optimisation_raises_the_reward_and_keeps_norms():
    net = TinyNet().requires_grad_(False)
    reward = lambda x: -(x - 1.0).square().sum(1)  # noqa: E731
    x_T = _noise((5, 2), 11)
    net.W.requires_grad_(True)
    z, hist = G.optimize_initial_noise(net, x_T, reward, SCHED, 5, iters=30, lr=0.05)
    assert net.W.grad is None  # the model is not touched
    torch.testing.assert_close(z.norm(dim=1), x_T.norm(dim=1))
    with torch.no_grad():
        after = float(reward(G.cfg_sample(net, z, SCHED, 5, None, 1.0)).mean())
    assert after > hist[0] + 0.1, (hist[0], after)


def test_lora_linear_starts_as_the_base_layer():
    base = torch.nn.Linear(6, 4).double()
    lora = G.LoRALinear(base, rank=2, alpha=3.0, generator=torch.Generator().manual_seed(0))
    x = _noise((5, 6))
    torch.testing.assert_close(lora(x), base(x))
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["A", "B"]
    with torch.no_grad():
        lora.B.normal_()
    torch.testing.assert_close(lora(x), base(x) + 1.5 * x @ lora.A.T @ lora.B.T)


# ------------------------------------------------------------------ noisy classifier, saturation

def test_noisy_classifier_learns_two_clusters():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(400) % 2
    x0 = torch.randn(400, 4, generator=g) * 0.2 + torch.where(y[:, None] == 0, 1.0, -1.0)
    clf = G.NoisyClassifier(dim=4, n_classes=2, width=32, emb=8)
    losses = G.train_noisy_classifier(clf, x0, y, SCHED, steps=150, batch_size=64, lr=1e-2, generator=g)
    assert len(losses) == 150 and not clf.training
    acc = (clf(x0, torch.zeros(400)).argmax(1) == y).float().mean()
    assert acc > 0.95 and sum(losses[-20:]) < sum(losses[:20])


def test_saturation_counts_pixels_beyond_the_threshold():
    x = torch.tensor([[0.0, 1.6, -2.0, 1.5], [-1.0, 0.2, 3.0, -1.49]])
    assert G.saturation(x) == pytest.approx(3 / 8)
    assert G.saturation(x, threshold=2.5) == pytest.approx(1 / 8)


# ------------------------------------------------------------------ bad input

def test_bad_input():
    m, x, labels = ClassGaussians(), _noise((3, 3)), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="uncond must have the shape"):
        G.cfg_combine(x, x[:2], 2.0)
    with pytest.raises(ValueError, match="cond"):
        G.cfg_combine(x * math.nan, x, 2.0)
    with pytest.raises(ValueError, match="scale"):
        G.cfg_combine(x, x, math.inf)
    with pytest.raises(TypeError, match="labels"):
        G.eps_cond_uncond(m, x, 5, None)
    with pytest.raises(ValueError, match="labels must have shape"):
        G.cfg_sample(m, x, SCHED, 5, torch.tensor([0, 1]), 2.0)
    with pytest.raises(ValueError, match="model must return eps"):
        G.cfg_sample(lambda x, t, lab: x[:, :1], x, SCHED, 5, labels, 2.0)
    with pytest.raises(TypeError, match="model must be callable"):
        G.cfg_sample("unet", x, SCHED, 5, labels, 2.0)
    with pytest.raises(ValueError, match="cfg_sample produced non-finite"):
        G.cfg_sample(lambda x, t, lab: x * math.nan, x, SCHED, 5, labels, 2.0)
    with pytest.raises(ValueError, match="steps must be <= T"):
        G.cfg_sample(m, x, SCHED, 101, labels, 2.0)
    with pytest.raises(ValueError, match="adaptive_threshold"):
        G.cfg_sample(m, x, SCHED, 5, labels, 2.0, adaptive_threshold=1.5)
    with pytest.raises(ValueError, match="grad_last"):
        G.cfg_sample(m, x, SCHED, 5, labels, 2.0, grad_last=6)
    with pytest.raises(ValueError, match="momentum must lie in"):
        G.apg_sample(m, x, SCHED, 5, labels, 2.0, momentum=1.0)
    with pytest.raises(ValueError, match="norm_threshold must be >= 0"):
        G.apg_combine(x, x, 2.0, norm_threshold=-1.0)
    with pytest.raises(ValueError, match="running must have the shape"):
        G.apg_combine(x, x, 2.0, running=x[:1])
    with pytest.raises(ValueError, match="direction must have the shape"):
        G.project(x, x[:, :2])
    with pytest.raises(TypeError, match="v must be float32 or float64"):
        G.project(x.long(), x)
    with pytest.raises(ValueError, match="classifier must return logits"):
        G.classifier_guided_eps(x, x, 5, lambda z, t: z.sum(1), labels, 1.0, SCHED)
    with pytest.raises(ValueError, match="labels must be class indices"):
        G.classifier_guided_eps(x, x, 5, lambda z, t: z[:, :2], labels, 1.0, SCHED)
    with pytest.raises(ValueError, match="t must be"):
        G.classifier_guided_eps(x, x, 100, lambda z, t: z, labels, 1.0, SCHED)
    with pytest.raises(TypeError, match="classifier must be callable"):
        G.classifier_guided_sample(m, None, x, SCHED, 5, labels, 1.0)
    with pytest.raises(TypeError, match="base must be a torch.nn.Linear"):
        G.LoRALinear(torch.nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="rank must be"):
        G.LoRALinear(torch.nn.Linear(3, 2), rank=3)
    with pytest.raises(ValueError, match="the model's eps_c must be finite"):
        G.eps_cond_uncond(lambda x, t, lab: x * math.nan, x, 5, labels)
    with pytest.raises(ValueError, match="the classifier's gradient must be finite"):
        G.classifier_guided_sample(m, lambda z, t: z * math.nan, x, SCHED, 3, labels, 1.0)
    with pytest.raises(ValueError, match=r"x must be a floating tensor of shape \(\.\.\., 3\)"):
        G.LoRALinear(torch.nn.Linear(3, 2), rank=1)(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="classifier must return floating logits"):
        G.train_noisy_classifier(G.NoisyClassifier(dim=3, n_classes=2), x.float(), labels, SCHED, steps=1)
    with pytest.raises(ValueError, match="emb must be even"):
        G.NoisyClassifier(emb=7)
    with pytest.raises(TypeError, match="t must be a floating tensor"):
        G.NoisyClassifier(dim=3)(x.float(), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels must be class indices >= 0"):
        G.train_noisy_classifier(G.NoisyClassifier(dim=3), x.float(), torch.tensor([0, -1, 1]), SCHED, steps=1)
    with pytest.raises(ValueError, match="reward must return a tensor of shape"):
        G.optimize_initial_noise(m, x, lambda z: z.sum(), SCHED, 3, iters=1)
    with pytest.raises(ValueError, match="reward returned non-finite"):
        G.optimize_initial_noise(TinyNet(3), x, lambda z: z.sum(1) * math.inf, SCHED, 3, iters=1)
    with pytest.raises(TypeError, match="keep_norm must be a bool"):
        G.optimize_initial_noise(m, x, lambda z: z.sum(1), SCHED, 3, keep_norm=1)
    with pytest.raises(ValueError, match="params must be floating tensors with requires_grad"):
        G.reward_finetune(m, [torch.zeros(2)], lambda z: z.sum(1), x, SCHED, 3)
    with pytest.raises(ValueError, match="the reward does not depend on params"):
        G.reward_finetune(TinyNet(3), [torch.zeros(2, requires_grad=True)], lambda z: z.sum(1), x, SCHED, 3)
    with pytest.raises(ValueError, match="reward must be a differentiable function"):
        G.optimize_initial_noise(m, x, lambda z: torch.zeros(3, dtype=F64), SCHED, 3, iters=1)
    with pytest.raises(TypeError, match="params must be a non-empty list"):
        G.reward_finetune(m, [], lambda z: z.sum(1), x, SCHED, 3)
    with pytest.raises(ValueError, match="iters"):
        G.reward_finetune(TinyNet(3), [TinyNet(3).W], lambda z: z.sum(1), x, SCHED, 3, iters=0)
    with pytest.raises(ValueError, match="threshold"):
        G.saturation(x, threshold=0.0)
    with pytest.raises(ValueError, match="x"):
        G.saturation(x * math.nan)
