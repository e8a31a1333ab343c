"""Tests of lib/score.py: autograd, torch.distributions, numerical convolution, closed forms."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import data
from lib import score as sc

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mixture(k=3, d=2, seed=0):
    g = _gen(seed)
    means = 3 * torch.randn(k, d, generator=g, dtype=D)
    stds = 0.5 + torch.rand(k, generator=g, dtype=D)
    weights = 0.1 + torch.rand(k, generator=g, dtype=D)
    return means, stds, weights


def _torch_mixture(means, stds, weights):
    """The same mixture as a torch.distributions object: the independent reference."""
    k, d = means.shape
    comp = torch.distributions.Independent(torch.distributions.Normal(means, stds[:, None].expand(k, d)), 1)
    return torch.distributions.MixtureSameFamily(torch.distributions.Categorical(weights / weights.sum()), comp)


# ---------------------------------------------------------------- analytic mixture scores

@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 4), d=st.integers(1, 3), sigma=st.sampled_from([0.0, 0.3, 2.0]), seed=st.integers(0, 99))
def test_gmm_log_prob_matches_torch_distributions(k, d, sigma, seed):
    means, stds, weights = _mixture(k, d, seed)
    x = 4 * torch.randn(20, d, generator=_gen(seed + 1), dtype=D)
    ref = _torch_mixture(means, (stds**2 + sigma**2).sqrt(), weights).log_prob(x)
    assert torch.allclose(sc.gmm_log_prob(x, means, stds, weights, sigma=sigma), ref, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 4), d=st.integers(1, 3), sigma=st.sampled_from([0.0, 0.5, 3.0]), seed=st.integers(0, 99))
def test_gmm_score_is_the_gradient_of_gmm_log_prob(k, d, sigma, seed):
    means, stds, weights = _mixture(k, d, seed)
    x = (5 * torch.randn(30, d, generator=_gen(seed + 1), dtype=D)).requires_grad_(True)
    (auto,) = torch.autograd.grad(sc.gmm_log_prob(x, means, stds, weights, sigma=sigma).sum(), x)
    assert torch.allclose(sc.gmm_score(x.detach(), means, stds, weights, sigma=sigma), auto, atol=1e-10)


def test_convolved_score_is_the_score_of_the_widened_mixture():
    means, stds, weights = _mixture(3, 2, seed=4)
    x = 3 * torch.randn(100, 2, generator=_gen(5), dtype=D)
    for sigma in (0.1, 1.0, 4.0):
        widened = sc.gmm_score(x, means, (stds**2 + sigma**2).sqrt(), weights)
        assert torch.allclose(sc.gmm_score(x, means, stds, weights, sigma=sigma), widened, atol=1e-12)


def test_convolved_density_matches_numerical_convolution_in_1d():
    means = torch.tensor([[-2.0], [1.5]], dtype=D)
    stds, weights, sigma = torch.tensor([0.4, 0.8], dtype=D), torch.tensor([0.3, 0.7], dtype=D), 0.6
    y = torch.linspace(-12, 12, 24001, dtype=D)
    p = sc.gmm_log_prob(y[:, None], means, stds, weights).exp()
    x = torch.linspace(-4, 4, 17, dtype=D)
    kernel = torch.exp(-((x[:, None] - y[None]) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)
    conv = torch.trapezoid(kernel * p, y, dim=1)
    assert torch.allclose(sc.gmm_log_prob(x[:, None], means, stds, weights, sigma=sigma).exp(), conv, atol=1e-10)


def test_gmm_defaults_batch_shapes_and_dtypes():
    means = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    x = torch.randn(5, 7, 2, generator=_gen(0))
    assert sc.gmm_score(x, means, 1.0).shape == (5, 7, 2)
    assert sc.gmm_log_prob(x, means, [1.0, 2.0], [1, 3]).shape == (5, 7)
    # uniform weights by default; stds as a number, list or tensor
    a = sc.gmm_score(x, means, 1.0)
    assert torch.allclose(a, sc.gmm_score(x, means, torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0])))
    # a single component: the Gaussian score (mu - x) / (s^2 + sigma^2)
    x1 = torch.randn(10, 3, generator=_gen(1), dtype=D)
    mu = torch.tensor([[1.0, -1.0, 0.5]], dtype=D)
    assert torch.allclose(sc.gmm_score(x1, mu, 2.0, sigma=1.0), (mu - x1) / 5.0)
    # half precision is computed in float32 and cast back
    h = sc.gmm_score(x.half(), means, 1.0)
    assert h.dtype == torch.float16 and torch.allclose(h.float(), a, atol=1e-2, rtol=1e-2)
    # a zero weight removes its component
    z = sc.gmm_score(x, means, 1.0, torch.tensor([0.0, 1.0]))
    assert torch.allclose(z, means[1] - x, atol=1e-6)


def test_gmm_far_from_modes_stays_finite():
    means = torch.tensor([[-5.0, -5.0], [5.0, 5.0]], dtype=D)
    x = torch.tensor([[1e3, -1e3], [0.0, 0.0]], dtype=D)
    s = sc.gmm_score(x, means, 0.1, torch.tensor([0.2, 0.8], dtype=D))
    assert torch.isfinite(s).all() and torch.isfinite(sc.gmm_log_prob(x, means, 0.1)).all()


def test_gmm_bad_input():
    means = torch.zeros(2, 2)
    x = torch.zeros(4, 2)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        sc.gmm_score([[0.0, 0.0]], means, 1.0)
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        sc.gmm_score(torch.zeros(4, 2, dtype=torch.long), means, 1.0)
    with pytest.raises(ValueError, match="x must be finite"):
        sc.gmm_score(torch.tensor([[math.nan, 0.0]]), means, 1.0)
    with pytest.raises(ValueError, match="d=2"):
        sc.gmm_score(torch.zeros(4, 3), means, 1.0)
    with pytest.raises(ValueError, match=r"means must have shape \(k, d\)"):
        sc.gmm_log_prob(x, torch.zeros(2, 2, 1), 1.0)
    with pytest.raises(ValueError, match="means must have at least 2"):
        sc.gmm_log_prob(x, torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="stds must be positive"):
        sc.gmm_score(x, means, 0.0)
    with pytest.raises(ValueError, match="stds must be a number or have k=2"):
        sc.gmm_score(x, means, torch.ones(3))
    with pytest.raises(TypeError, match="stds must be a number"):
        sc.gmm_score(x, means, "1")
    with pytest.raises(ValueError, match="weights must be non-negative"):
        sc.gmm_score(x, means, 1.0, torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="weights must be non-negative with a positive sum"):
        sc.gmm_score(x, means, 1.0, torch.zeros(2))
    with pytest.raises(ValueError, match="weights must have k=2"):
        sc.gmm_score(x, means, 1.0, torch.ones(3))
    with pytest.raises(ValueError, match="weights must be finite"):
        sc.gmm_score(x, means, 1.0, torch.tensor([1.0, math.inf]))
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        sc.gmm_score(x, means, 1.0, sigma=-0.1)
    with pytest.raises(ValueError, match="sigma must be a finite number"):
        sc.gmm_score(x, means, 1.0, sigma=math.nan)
    with pytest.raises(ValueError, match="overflow"):
        sc.gmm_score(x, means, 1e30, sigma=1e30)


# ---------------------------------------------------------------- implicit score matching

def test_ism_loss_closed_form_for_a_linear_score():
    g = _gen(0)
    A, b = torch.randn(3, 3, generator=g, dtype=D), torch.randn(3, generator=g, dtype=D)
    x = torch.randn(50, 3, generator=g, dtype=D)
    ref = 0.5 * ((x @ A.T + b) ** 2).sum(1).mean() + torch.trace(A)
    assert abs(sc.ism_loss(lambda y: y @ A.T + b, x).item() - ref.item()) < 1e-12


def test_ism_loss_trace_matches_torch_func_jacobian():
    W = torch.randn(4, 4, generator=_gen(1), dtype=D)
    score = lambda y: torch.tanh(y @ W.T) - y**3
    x = torch.randn(30, 4, generator=_gen(2), dtype=D)
    J = torch.func.vmap(torch.func.jacrev(lambda y: score(y[None])[0]))(x)
    ref = 0.5 * (score(x) ** 2).sum(1).mean() + torch.diagonal(J, dim1=1, dim2=2).sum(1).mean()
    assert abs(sc.ism_loss(score, x).item() - ref.item()) < 1e-12


def test_hyvarinen_identity_on_a_mixture():
    """ISM(s) = Fisher divergence(s) - E|grad log p|^2 / 2 for every s (in expectation)."""
    means, stds, weights = _mixture(2, 2, seed=3)
    x = data.gaussian_mixture(100000, means, std=stds, weights=weights, seed=0)[0].double()
    true = sc.gmm_score(x, means, stds, weights)
    const = 0.5 * (true**2).sum(1).mean().item()
    for scale in (0.7, 1.0, 1.5):
        cand = lambda y, c=scale: sc.gmm_score(y, means, c * stds, weights)
        fisher = 0.5 * ((cand(x) - true) ** 2).sum(1).mean().item()
        assert abs(sc.ism_loss(cand, x).item() - (fisher - const)) < 0.05 * (1 + fisher)


def test_ism_loss_is_trainable_and_constant_scores_have_zero_trace():
    lin = torch.nn.Linear(2, 2).double()
    x = torch.randn(10, 2, generator=_gen(0), dtype=D)
    loss = sc.ism_loss(lin, x)
    loss.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
    # d/dW of (1/2 |Wx + b|^2 + tr W) at the mean: W^T-free check on the identity part
    c = torch.tensor([1.0, 2.0], dtype=D)
    assert abs(sc.ism_loss(lambda y: c.expand_as(y), x).item() - 2.5) < 1e-12


def test_ism_loss_bad_input():
    x = torch.randn(5, 2, dtype=D)
    with pytest.raises(TypeError, match="score must be callable"):
        sc.ism_loss("s", x)
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\)"):
        sc.ism_loss(lambda y: y, torch.zeros(2, 2, 2))
    with pytest.raises(TypeError, match="float32 or float64"):
        sc.ism_loss(lambda y: y, x.half())
    with pytest.raises(ValueError, match="score must return a tensor shaped like its input"):
        sc.ism_loss(lambda y: y[:, :1], x)
    with pytest.raises(ValueError, match="score returned NaN"):
        sc.ism_loss(lambda y: y * math.nan, x)
    with pytest.raises(TypeError, match="score must return a torch.Tensor"):
        sc.ism_loss(lambda y: 1.0, x)


# ---------------------------------------------------------------- denoising score matching

def _noisy_gaussian_model(mu, s):
    """The exact noise-conditional score of N(mu, s^2 I), one noise level per row."""
    return lambda y, sigma: (mu - y) / (s**2 + sigma[:, None] ** 2)


def test_dsm_minimum_for_a_gaussian_is_its_closed_form():
    """At the exact score, E[DSM] = (d - sigma^2 E|grad log p_sigma|^2)/2 = d s^2 / (2 (s^2 + sigma^2))."""
    d, s, sigma = 3, 1.5, 0.8
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    x = mu + s * torch.randn(400000, d, generator=_gen(0), dtype=D)
    loss = sc.dsm_loss(_noisy_gaussian_model(mu, s), x, sigma, generator=_gen(1)).item()
    assert abs(loss - d * s**2 / (2 * (s**2 + sigma**2))) < 0.01


def test_dsm_exact_score_beats_perturbed_scores_by_the_explicit_gap():
    """DSM(s + delta) - DSM(s) = sigma^2 E|delta|^2 / 2 in expectation (Vincent's equivalence)."""
    means, stds, weights = _mixture(3, 2, seed=7)
    x = data.gaussian_mixture(200000, means, std=stds, weights=weights, seed=1)[0].double()
    sigmas = torch.tensor([0.3, 1.0, 2.0], dtype=D)

    def exact(y, sigma, scale=1.0, shift=0.0):
        out = torch.empty_like(y)
        for s_val in sigma.unique().tolist():
            rows = sigma == s_val
            out[rows] = scale * sc.gmm_score(y[rows], means, stds, weights, sigma=s_val) + shift
        return out

    base = sc.dsm_loss(exact, x, sigmas, generator=_gen(2)).item()
    c = torch.tensor([0.3, -0.2], dtype=D)
    shifted = sc.dsm_loss(lambda y, s: exact(y, s, shift=c), x, sigmas, generator=_gen(2)).item()
    gap = 0.5 * (c**2).sum().item() * (sigmas**2).mean().item()
    assert abs((shifted - base) - gap) < 0.1 * gap
    for scale in (0.8, 1.25):
        assert sc.dsm_loss(lambda y, s: exact(y, s, scale=scale), x, sigmas, generator=_gen(2)).item() > base


def test_dsm_draws_levels_uniformly_and_is_reproducible():
    seen = []

    def model(y, sigma):
        seen.append(sigma.clone())
        return torch.zeros_like(y)

    x = torch.randn(30000, 2)
    sigmas = [0.1, 1.0, 10.0]
    loss = sc.dsm_loss(model, x, sigmas, generator=_gen(0))
    sig = seen[0]
    assert sig.shape == (30000,) and sig.dtype == torch.float32
    counts = torch.stack([(sig == torch.tensor(v)).sum() for v in sigmas]).double() / 30000
    assert torch.allclose(counts, torch.full((3,), 1 / 3, dtype=D), atol=0.015)
    # zero score: loss = mean |z|^2 / 2 = d/2
    assert abs(loss.item() - 1.0) < 0.02
    assert sc.dsm_loss(model, x, sigmas, generator=_gen(0)).item() == loss.item()


def test_dsm_trains_a_score_mlp_and_keeps_images_shapes():
    torch.manual_seed(0)
    net = sc.ScoreMLP(2, 16, 1)
    loss = sc.dsm_loss(net, torch.randn(64, 2), torch.tensor([0.5, 1.0]), generator=_gen(0))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    # any trailing shape: a per-sample sigma broadcast over (n, 1, 4, 4)
    imgs = torch.randn(8, 1, 4, 4, dtype=D)
    out = sc.dsm_loss(lambda y, s: -y / (1 + s[:, None, None, None] ** 2), imgs, 0.5, generator=_gen(1))
    assert out.shape == () and torch.isfinite(out)


def test_dsm_bad_input():
    x = torch.randn(8, 2)
    zero = lambda y, s: torch.zeros_like(y)
    with pytest.raises(TypeError, match="score_model must be callable"):
        sc.dsm_loss(None, x, 1.0)
    with pytest.raises(ValueError, match="x must have at least 2"):
        sc.dsm_loss(zero, torch.randn(8), 1.0)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        sc.dsm_loss(zero, x.half(), 1.0)
    with pytest.raises(ValueError, match="sigmas must be positive"):
        sc.dsm_loss(zero, x, [1.0, 0.0])
    with pytest.raises(ValueError, match="sigmas must be finite"):
        sc.dsm_loss(zero, x, torch.tensor([math.nan]))
    with pytest.raises(ValueError, match="sigmas must hold at least one"):
        sc.dsm_loss(zero, x, torch.tensor([]))
    with pytest.raises(TypeError, match="sigmas must be a number"):
        sc.dsm_loss(zero, x, "1")
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        sc.dsm_loss(zero, x, 1.0, generator=0)
    with pytest.raises(ValueError, match="score_model must return a tensor shaped like"):
        sc.dsm_loss(lambda y, s: y.sum(1), x, 1.0)
    with pytest.raises(ValueError, match="score_model returned NaN"):
        sc.dsm_loss(lambda y, s: y + math.inf, x, 1.0)


# ---------------------------------------------------------------- the score network

def test_score_mlp_shapes_and_sigma_forms():
    torch.manual_seed(0)
    net = sc.ScoreMLP(d=3, width=8, depth=2, data_std=2.0)
    x = torch.randn(5, 3)
    out = net(x, 0.5)
    assert out.shape == (5, 3)
    assert torch.allclose(out, net(x, torch.full((5,), 0.5)))
    # the output is divided by sigma: sigma * s is the network's raw output at the scaled input
    c_in = 1 / math.sqrt(4.0 + 0.25)
    raw = net.net(torch.cat([x * c_in, torch.full((5, 1), math.log(0.5))], 1))
    assert torch.allclose(out * 0.5, raw, atol=1e-6)
    assert "width=8" in repr(net)
    net64 = sc.ScoreMLP(2).double()
    assert net64(torch.zeros(1, 2, dtype=D), 1.0).dtype == D


def test_score_mlp_bad_input():
    with pytest.raises(ValueError, match="width must be"):
        sc.ScoreMLP(width=0)
    with pytest.raises(TypeError, match="depth must be an int"):
        sc.ScoreMLP(depth=2.0)
    with pytest.raises(ValueError, match="data_std must be a positive"):
        sc.ScoreMLP(data_std=-1.0)
    net = sc.ScoreMLP(2, 4, 1)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        net(torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="x must have the module's dtype"):
        net(torch.zeros(3, 2, dtype=D), 1.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        net(torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="sigma must be a number or have n=3"):
        net(torch.zeros(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="x must be finite"):
        net(torch.full((3, 2), math.nan), 1.0)


# ---------------------------------------------------------------- Tweedie

def test_tweedie_is_the_posterior_mean_of_a_mixture():
    """E[x | x~] = sum_k r_k(x~) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x~ - mu_k)), computed independently."""
    means, stds, weights = _mixture(3, 2, seed=9)
    sigma = 1.3
    y = 4 * torch.randn(40, 2, generator=_gen(3), dtype=D)
    var = stds**2 + sigma**2
    logits = torch.log(weights / weights.sum()) - ((y[:, None] - means) ** 2).sum(-1) / (2 * var) - torch.log(var)
    r = torch.softmax(logits, 1)
    post = means + (stds**2 / var)[:, None] * (y[:, None] - means)
    ref = (r[..., None] * post).sum(1)
    out = sc.tweedie_denoise(y, sc.gmm_score(y, means, stds, weights, sigma=sigma), sigma)
    assert torch.allclose(out, ref, atol=1e-12)


def test_tweedie_per_sample_sigma_and_monte_carlo():
    y = torch.zeros(3, 2, dtype=D)
    s = torch.ones(3, 2, dtype=D)
    out = sc.tweedie_denoise(y, s, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(out[:, 0], torch.tensor([1.0, 4.0, 9.0], dtype=D))
    # Monte Carlo: among samples whose noisy version lands near y0, the clean mean is Tweedie's
    mu = torch.tensor([[0.0]], dtype=D)
    x = torch.randn(2_000_000, 1, generator=_gen(0), dtype=D)
    xn = x + 0.5 * torch.randn(x.shape, generator=_gen(1), dtype=D)
    near = (xn - 1.0).abs() < 0.02
    mc = x[near].mean().item()
    tw = sc.tweedie_denoise(torch.ones(1, 1, dtype=D), sc.gmm_score(torch.ones(1, 1, dtype=D), mu, 1.0, sigma=0.5),
                            0.5).item()
    assert abs(mc - tw) < 0.01 and abs(tw - 0.8) < 1e-12


def test_tweedie_bad_input():
    y = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="score must be shaped like x_noisy"):
        sc.tweedie_denoise(y, torch.zeros(3, 1), 1.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        sc.tweedie_denoise(y, y, -1.0)
    with pytest.raises(ValueError, match="sigma must be a number or have n=3"):
        sc.tweedie_denoise(y, y, torch.ones(2))
    with pytest.raises(ValueError, match="score must be finite"):
        sc.tweedie_denoise(y, y + math.nan, 1.0)
    with pytest.raises(TypeError, match="x_noisy must be a torch.Tensor"):
        sc.tweedie_denoise(None, y, 1.0)
    with pytest.raises(ValueError, match="overflows"):
        sc.tweedie_denoise(y, y + 1e30, 1e10)


# ---------------------------------------------------------------- Langevin

def test_langevin_reaches_the_gaussian_mean_and_discretised_variance():
    mu, s, eps = torch.tensor([2.0, -1.0], dtype=D), 1.5, 0.4
    x = sc.langevin(lambda y: (mu - y) / s**2, torch.zeros(40000, 2, dtype=D), eps, 300, generator=_gen(0))
    assert torch.allclose(x.mean(0), mu, atol=0.03)
    var_ula = s**2 / (1 - eps / (4 * s**2))  # the exact stationary variance of the discretised chain
    assert torch.allclose(x.var(0), torch.full((2,), var_ula, dtype=D), rtol=0.03)
    # a step ten times larger has a visibly larger variance, as predicted
    big = sc.langevin(lambda y: (mu - y) / s**2, torch.zeros(40000, 2, dtype=D), 4.0, 100, generator=_gen(1))
    assert torch.allclose(big.var(0), torch.full((2,), s**2 / (1 - 4.0 / (4 * s**2)), dtype=D), rtol=0.03)


def test_langevin_path_zero_steps_and_reproducibility():
    x0 = torch.randn(5, 3)
    path = sc.langevin(lambda y: -y, x0, 0.1, 7, generator=_gen(0), return_path=True)
    assert path.shape == (8, 5, 3) and torch.equal(path[0], x0)
    assert torch.equal(path[-1], sc.langevin(lambda y: -y, x0, 0.1, 7, generator=_gen(0)))
    assert torch.equal(sc.langevin(lambda y: -y, x0, 0.1, 0), x0)
    # one step by hand
    z = torch.randn(x0.shape, generator=_gen(3))
    one = sc.langevin(lambda y: -y, x0, 0.1, 1, generator=_gen(3))
    assert torch.allclose(one, x0 - 0.05 * x0 + math.sqrt(0.1) * z)


def test_langevin_bad_input():
    x0 = torch.zeros(4, 2)
    with pytest.raises(TypeError, match="score must be callable"):
        sc.langevin(3, x0, 0.1, 5)
    with pytest.raises(ValueError, match="step_size must be a positive"):
        sc.langevin(lambda y: -y, x0, 0.0, 5)
    with pytest.raises(ValueError, match="n_steps must be >= 0"):
        sc.langevin(lambda y: -y, x0, 0.1, -1)
    with pytest.raises(TypeError, match="n_steps must be an int"):
        sc.langevin(lambda y: -y, x0, 0.1, 2.5)
    with pytest.raises(TypeError, match="x0 must be float32 or float64"):
        sc.langevin(lambda y: -y, x0.half(), 0.1, 5)
    with pytest.raises(ValueError, match="x0 must be finite"):
        sc.langevin(lambda y: -y, x0 + math.nan, 0.1, 5)
    with pytest.raises(ValueError, match="score must return a tensor shaped like"):
        sc.langevin(lambda y: y[:, 0], x0, 0.1, 5)
    with pytest.raises(ValueError, match="score returned NaN"):
        sc.langevin(lambda y: y * math.nan, x0, 0.1, 5)
    with pytest.raises(ValueError, match="Langevin diverged"):
        sc.langevin(lambda y: -y, x0 + 1.0, 10.0, 2000)
    with pytest.raises(TypeError, match="return_path must be a bool"):
        sc.langevin(lambda y: -y, x0, 0.1, 5, return_path=1)


def test_annealed_langevin_levels_steps_and_path():
    calls = []

    def zero(y, sigma):
        calls.append(sigma[0].item())
        assert sigma.shape == (y.shape[0],) and torch.all(sigma == sigma[0])
        return torch.zeros_like(y)

    sigmas = [4.0, 2.0, 1.0]
    x0 = torch.zeros(50000, 1, dtype=D)
    x = sc.annealed_langevin(zero, x0, sigmas, 10, 0.01, generator=_gen(0))
    assert calls == [4.0] * 10 + [2.0] * 10 + [1.0] * 10
    # with a zero score the iterate is a sum of noises of variance alpha_i = eps sigma_i^2 / sigma_L^2
    assert abs(x.var().item() / (10 * 0.01 * (16 + 4 + 1)) - 1) < 0.03
    path = sc.annealed_langevin(zero, x0[:3], sigmas, 10, 0.01, generator=_gen(0), denoise=True, return_path=True)
    assert path.shape == (32, 3, 1) and torch.equal(path[0], x0[:3])


def test_annealed_langevin_samples_a_gaussian_and_denoises():
    mu, s = torch.tensor([3.0, -3.0], dtype=D), 0.5
    model = _noisy_gaussian_model(mu, s)
    sigmas = torch.logspace(1, -1, 8, dtype=D)
    x0 = 20 * torch.rand(20000, 2, generator=_gen(1), dtype=D) - 10
    x = sc.annealed_langevin(model, x0, sigmas, 100, 5e-3, generator=_gen(2))
    assert torch.allclose(x.mean(0), mu, atol=0.02)
    assert torch.allclose(x.var(0), torch.full((2,), s**2 + 0.01, dtype=D), rtol=0.05)
    # the Tweedie step shrinks the last noise: variance s^4 / (s^2 + sigma_L^2) for a Gaussian
    xd = sc.annealed_langevin(model, x0, sigmas, 100, 5e-3, generator=_gen(2), denoise=True)
    assert torch.allclose(xd.var(0), torch.full((2,), s**4 / (s**2 + 0.01), dtype=D), rtol=0.05)


def test_annealed_langevin_bad_input():
    x0 = torch.zeros(4, 2)
    zero = lambda y, s: torch.zeros_like(y)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sc.annealed_langevin(zero, x0, [1.0, 2.0], 5, 0.1)
    with pytest.raises(ValueError, match="sigmas must be positive"):
        sc.annealed_langevin(zero, x0, [1.0, -1.0], 5, 0.1)
    with pytest.raises(ValueError, match="n_steps_each must be >= 1"):
        sc.annealed_langevin(zero, x0, [1.0], 0, 0.1)
    with pytest.raises(ValueError, match="step_lr must be a positive"):
        sc.annealed_langevin(zero, x0, [1.0], 5, -0.1)
    with pytest.raises(TypeError, match="denoise must be a bool"):
        sc.annealed_langevin(zero, x0, [1.0], 5, 0.1, denoise="yes")
    with pytest.raises(TypeError, match="generator must be None or a torch.Generator"):
        sc.annealed_langevin(zero, x0, [1.0], 5, 0.1, generator="g")
    with pytest.raises(ValueError, match="score must return a tensor shaped like"):
        sc.annealed_langevin(lambda y, s: s, x0, [1.0], 5, 0.1)
    with pytest.raises(ValueError, match="overflows"):
        sc.annealed_langevin(zero, x0.double(), [1e200, 1e-200], 1, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generator_on_another_device_is_refused():
    with pytest.raises(ValueError, match="generator must be on x's device type"):
        sc.langevin(lambda y: -y, torch.zeros(2, 2), 0.1, 1, generator=torch.Generator(device="cuda"))
