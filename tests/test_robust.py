"""Tests of lib/robust.py against closed forms (linear classifiers), brute force and torch.optim."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lib import robust as R

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _linear2(d: int = 5, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, 2).to(D)


def _mlp(seed: int = 0, d: int = 4, h: int = 8, c: int = 3, dtype=D) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c)).to(dtype)


def _data(n: int = 12, d: int = 4, c: int = 3, seed: int = 0, dtype=D):
    g = _gen(seed)
    return torch.rand(n, d, generator=g, dtype=dtype), torch.randint(0, c, (n,), generator=g)


def _worst_linear(lin: nn.Linear, x, y, eps, clamp=None):
    """Closed form for a 2-class linear model: move each coordinate against w_y - w_other."""
    w = lin.weight.detach()
    direction = w[1 - y] - w[y]                      # (N, d): d(z_other - z_y)/dx
    x_star = x + eps * direction.sign()
    return x_star if clamp is None else x_star.clamp(*clamp)


# ------------------------------------------------------------------ attacks on a linear model

def test_fgsm_and_pgd_reach_the_closed_form_worst_case_of_a_linear_classifier():
    lin = _linear2()
    x, y = _data(n=20, d=5, c=2)
    eps = 0.1
    x_star = _worst_linear(lin, x, y, eps)
    torch.testing.assert_close(R.fgsm(lin, x, y, eps), x_star, rtol=0, atol=1e-12)
    # alpha * steps >= 2 eps: from any start PGD reaches the corner
    x_pgd = R.pgd_attack(lin, x, y, eps, alpha=0.03, steps=10, generator=_gen(1))
    torch.testing.assert_close(x_pgd, x_star, rtol=0, atol=1e-12)
    # the corner attains the closed-form minimum margin z_y - z_o = m(x) - eps ||w_y - w_o||_1
    w, b = lin.weight.detach(), lin.bias.detach()
    margin = lambda z: (z @ w.T + b).gather(1, y[:, None])[:, 0] - (z @ w.T + b).gather(1, 1 - y[:, None])[:, 0]
    l1 = (w[y] - w[1 - y]).abs().sum(1)
    torch.testing.assert_close(margin(x_pgd), margin(x) - eps * l1, rtol=0, atol=1e-12)
    # and no random point of the ball does better (brute force)
    for s in range(5):
        u = x + eps * (2 * torch.rand(x.shape, generator=_gen(10 + s), dtype=D) - 1)
        assert bool((margin(u) >= margin(x_pgd) - 1e-12).all())


def test_pgd_with_clamp_matches_the_clipped_corner():
    lin = _linear2(seed=3)
    x, y = _data(n=20, d=5, c=2, seed=3)
    x_star = _worst_linear(lin, x, y, 0.3, clamp=(0.0, 1.0))
    torch.testing.assert_close(R.pgd_attack(lin, x, y, 0.3, 0.1, 10, clamp=(0.0, 1.0), generator=_gen(0)),
                               x_star, rtol=0, atol=1e-12)
    torch.testing.assert_close(R.fgsm(lin, x, y, 0.3, clamp=(0.0, 1.0)), x_star, rtol=0, atol=1e-12)


def test_pgd_without_random_start_one_step_of_eps_is_fgsm():
    net = _mlp()
    x, y = _data()
    a = R.pgd_attack(net, x, y, 0.2, alpha=0.2, steps=1, random_start=False)
    torch.testing.assert_close(a, R.fgsm(net, x, y, 0.2), rtol=0, atol=0)


def test_pgd_finds_the_loss_maximum_of_a_small_box_by_brute_force():
    # 2-D inputs: the cross-entropy over a small box, maximised on a 61 x 61 grid
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)).to(D)
    x, y = torch.tensor([[0.3, -0.2], [1.0, 0.5]], dtype=D), torch.tensor([0, 2])
    eps = 0.05
    x_adv = R.pgd_attack(net, x, y, eps, alpha=eps / 10, steps=60, generator=_gen(0))
    t = torch.linspace(-eps, eps, 61, dtype=D)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        for i in range(2):
            best = F.cross_entropy(net(x[i] + grid), y[i].expand(len(grid)), reduction="none").max()
            got = F.cross_entropy(net(x_adv[i:i + 1]), y[i:i + 1])
            assert got >= best - 1e-9, (i, float(got), float(best))


@settings(max_examples=30, deadline=None)
@given(eps=st.floats(0.0, 1.0), alpha=st.floats(1e-3, 2.0), steps=st.integers(0, 5), seed=st.integers(0, 1000),
       clamp=st.booleans())
def test_pgd_stays_in_the_ball_and_the_range(eps, alpha, steps, seed, clamp):
    net = _mlp(seed=seed % 3)
    x, y = _data(seed=seed)
    rng = (0.0, 1.0) if clamp else None
    x_adv = R.pgd_attack(net, x, y, eps, alpha, steps, generator=_gen(seed), clamp=rng)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float((x_adv - x).abs().max()) <= eps + 1e-15
    if clamp:
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_eps_zero_returns_the_input_and_the_generator_makes_it_reproducible():
    net = _mlp()
    x, y = _data()
    assert torch.equal(R.pgd_attack(net, x, y, 0.0, 0.1, 3), x)
    assert torch.equal(R.fgsm(net, x, y, 0.0), x)
    a = R.pgd_attack(net, x, y, 0.2, 0.05, 3, generator=_gen(7))
    b = R.pgd_attack(net, x, y, 0.2, 0.05, 3, generator=_gen(7))
    assert torch.equal(a, b)
    c = R.pgd_attack(net, x, y, 0.2, 0.05, 0, generator=_gen(8))  # the random start alone
    assert not torch.equal(c, x) and float((c - x).abs().max()) <= 0.2


def test_attacks_leave_the_model_as_they_found_it():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)).to(D)
    net.train()
    net[3].eval()                                   # a mixed state must come back as it was
    net[0].weight.requires_grad_(False)
    x, y = _data()
    running = net[1].running_mean.clone()
    before = [p.detach().clone() for p in net.parameters()]
    for attack in (lambda: R.fgsm(net, x, y, 0.1), lambda: R.pgd_attack(net, x, y, 0.1, 0.02, 3)):
        attack()
        with torch.no_grad():
            attack()                                # works under no_grad too
        assert net.training and net[1].training and not net[3].training
        assert not net[0].weight.requires_grad and net[0].bias.requires_grad
        assert all(p.grad is None for p in net.parameters())
        assert torch.equal(net[1].running_mean, running)  # eval mode: batch-norm statistics untouched
        assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))


def test_attacks_raise_the_loss_of_a_network():
    net = _mlp()
    x, y = _data(n=40)
    loss = lambda z: float(F.cross_entropy(net(z), y).detach())
    clean = loss(x)
    assert loss(R.fgsm(net, x, y, 0.2)) > clean
    assert loss(R.pgd_attack(net, x, y, 0.2, 0.05, 10, generator=_gen(0))) > loss(R.fgsm(net, x, y, 0.2)) - 1e-9


# ------------------------------------------------------------------ attack errors

def test_attack_errors():
    net = _mlp()
    x, y = _data()
    with pytest.raises(TypeError, match="model"):
        R.fgsm(lambda t: t, x, y, 0.1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        R.fgsm(net, x.tolist(), y, 0.1)
    with pytest.raises(TypeError, match="floating"):
        R.fgsm(net, y[:, None].expand(-1, 4), y, 0.1)
    with pytest.raises(ValueError, match=r"x must be a non-empty batch"):
        R.fgsm(net, x[0], y, 0.1)
    with pytest.raises(ValueError, match="x must be finite"):
        R.fgsm(net, x.clone().fill_(math.nan), y, 0.1)
    with pytest.raises(TypeError, match="integer class labels"):
        R.fgsm(net, x, y.double(), 0.1)
    with pytest.raises(ValueError, match=r"y must have shape \(12,\)"):
        R.fgsm(net, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="labels >= 0"):
        R.fgsm(net, x, y - 5, 0.1)
    with pytest.raises(ValueError, match="labels < C = 3"):
        R.fgsm(net, x, y + 3, 0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        R.fgsm(net, x, y, -0.1)
    with pytest.raises(ValueError, match="eps must be a finite"):
        R.pgd_attack(net, x, y, math.inf, 0.1, 3)
    with pytest.raises(TypeError, match="eps must be a number"):
        R.fgsm(net, x, y, "0.1")
    with pytest.raises(ValueError, match="alpha must be a positive"):
        R.pgd_attack(net, x, y, 0.1, 0.0, 3)
    with pytest.raises(TypeError, match="steps must be an int"):
        R.pgd_attack(net, x, y, 0.1, 0.1, 2.0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        R.pgd_attack(net, x, y, 0.1, 0.1, -1)
    with pytest.raises(TypeError, match="random_start"):
        R.pgd_attack(net, x, y, 0.1, 0.1, 1, random_start=1)
    with pytest.raises(TypeError, match="generator"):
        R.pgd_attack(net, x, y, 0.1, 0.1, 1, generator=0)
    with pytest.raises(TypeError, match="clamp must be None or a pair"):
        R.pgd_attack(net, x, y, 0.1, 0.1, 1, clamp=1.0)
    with pytest.raises(ValueError, match="lo < hi"):
        R.pgd_attack(net, x, y, 0.1, 0.1, 1, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="x must lie in the clamp range"):
        R.pgd_attack(net, x + 2, y, 0.1, 0.1, 1, clamp=(0.0, 1.0))
    with pytest.raises(TypeError, match="dtype torch.float64 but the input has torch.float32"):
        R.fgsm(net, x.float(), y, 0.1)
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        R.fgsm(nn.Linear(4, 1).to(D), x, y, 0.1)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        R.fgsm(_TupleNet(), x, y, 0.1)

    class NanNet(nn.Module):
        def forward(self, t):
            return torch.full((t.shape[0], 3), math.nan, dtype=t.dtype) + 0 * t.sum()

    with pytest.raises(ValueError, match="non-finite logits"):
        R.pgd_attack(NanNet(), x, y, 0.1, 0.1, 2)

    class Detached(nn.Module):
        def forward(self, t):
            return torch.zeros(t.shape[0], 3, dtype=t.dtype)

    with pytest.raises(ValueError, match="do not depend differentiably on x"):
        R.fgsm(Detached(), x, y, 0.1)

    class Ignores(nn.Module):  # logits that ignore x but carry parameters: zero gradient, no move
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(3, dtype=D))

        def forward(self, t):
            return self.b.expand(t.shape[0], 3)

    assert torch.equal(R.fgsm(Ignores(), x, y, 0.1), x)


class _TupleNet(nn.Module):
    def forward(self, t):
        return (t,)


# ------------------------------------------------------------------ interval bounds

def test_ibp_on_one_linear_layer_is_the_closed_form_and_attained_at_corners():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).to(D)
    g = _gen(0)
    centre = torch.randn(5, 4, generator=g, dtype=D)
    radius = torch.rand(5, 4, generator=g, dtype=D)
    lo, hi = R.ibp_bounds(lin, centre - radius, centre + radius)
    W, b = lin.weight.detach(), lin.bias.detach()
    torch.testing.assert_close(lo, centre @ W.T + b - radius @ W.abs().T, rtol=0, atol=1e-12)
    torch.testing.assert_close(hi, centre @ W.T + b + radius @ W.abs().T, rtol=0, atol=1e-12)
    # exact: the extremes are attained at corners of the box (brute force over the 16 corners)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)), dtype=D)
    corners = centre[:, None, :] + signs[None] * radius[:, None, :]          # (5, 16, 4)
    with torch.no_grad():
        out = lin(corners)
    torch.testing.assert_close(hi, out.max(1).values, rtol=0, atol=1e-12)
    torch.testing.assert_close(lo, out.min(1).values, rtol=0, atol=1e-12)


def _box_points(lower, upper, n, seed):
    """n random points of each box, with corners mixed in."""
    g = _gen(seed)
    u = torch.rand((n,) + lower.shape, generator=g, dtype=lower.dtype)
    corner = torch.rand((n,) + lower.shape, generator=g) < 0.5
    u = torch.where(torch.rand(n, *[1] * lower.ndim, generator=g) < 0.3, corner.to(lower.dtype), u)
    return lower + u * (upper - lower)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.floats(0.0, 2.0), dtype=st.sampled_from([torch.float32, D]),
       depth=st.integers(1, 3))
def test_ibp_bounds_contain_the_outputs_of_random_and_pgd_points(seed, width, dtype, depth):
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    d = 4
    for _ in range(depth):
        layers += [nn.Linear(d, 6), nn.ReLU()]
        d = 6
    net = nn.Sequential(*layers, nn.Linear(d, 3)).to(dtype)
    g = _gen(seed)
    centre = 3 * torch.randn(5, 2, 2, generator=g, dtype=dtype)
    r = width * torch.rand(5, 2, 2, generator=g, dtype=dtype)
    lower, upper = centre - r, centre + r
    lo, hi = R.ibp_bounds(net, lower, upper)
    assert lo.shape == hi.shape == (5, 3) and bool((lo <= hi).all())
    pts = _box_points(lower, upper, 200, seed)                 # (200, 5, 2, 2)
    y = torch.randint(0, 3, (5,), generator=g)
    eps = float(r.max())
    pgd = R.pgd_attack(net, centre, y, eps, max(eps / 4, 1e-3), 10, generator=g)
    pgd = torch.minimum(torch.maximum(pgd, lower), upper)      # PGD's ball is the cube of the largest radius
    with torch.no_grad():
        outs = torch.cat([net(pts.reshape(-1, 2, 2)).reshape(200, 5, 3), net(pgd)[None]])
    # no tolerance: the rounding allowance makes the bounds hold for the floating-point outputs
    assert bool((outs >= lo).all()) and bool((outs <= hi).all())
    m = R.margin_bounds(net, lower, upper, y)
    true_margins = outs.gather(2, y[None, :, None].expand(len(outs), 5, 1)) - outs
    assert bool((true_margins >= m).all())
    naive = lo.gather(1, y[:, None]) - hi
    naive = naive.scatter(1, y[:, None], 0.0)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert bool((m >= naive - tol).all())      # eliding the last layer is never looser


def test_bounds_tighten_to_the_point_and_shrink_with_the_box():
    net = _mlp(dtype=torch.float32)
    x, _ = _data(dtype=torch.float32)
    lo, hi = R.ibp_bounds(net, x, x)
    with torch.no_grad():
        z = net(x)
    assert bool((lo <= z).all()) and bool((z <= hi).all())
    torch.testing.assert_close(lo, z, rtol=0, atol=1e-5)
    torch.testing.assert_close(hi, z, rtol=0, atol=1e-5)
    widths = []
    for eps in (0.01, 0.1, 0.5):
        lo_e, hi_e = R.ibp_bounds(net, x - eps, x + eps)
        widths.append(float((hi_e - lo_e).mean()))
        assert bool((lo_e <= lo).all()) and bool((hi_e >= hi).all())   # a bigger box, wider bounds
    assert widths[0] < widths[1] < widths[2]


def test_ibp_accepts_nested_sequential_and_is_differentiable():
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    net = nn.Sequential(nn.Identity(), inner, nn.Sequential(nn.Linear(5, 3))).to(D)
    x, y = _data()
    lo, hi = R.ibp_bounds(net, x - 0.1, x + 0.1)
    (hi - lo).sum().backward()
    assert inner[0].weight.grad is not None and bool(inner[0].weight.grad.abs().sum() > 0)
    m = R.margin_bounds(net, x - 0.1, x + 0.1, y)
    assert m.shape == (12, 3) and bool((m.gather(1, y[:, None]) == 0).all())


def test_margin_bounds_exact_for_a_linear_model_and_naive_without_a_last_linear():
    torch.manual_seed(1)
    lin = nn.Linear(4, 3).to(D)
    x, y = _data()
    eps = 0.2
    W, b = lin.weight.detach(), lin.bias.detach()
    Dm = W[y][:, None, :] - W[None]                         # rows w_y - w_j
    ref = torch.einsum("ncd,nd->nc", Dm, x) + (b[y][:, None] - b) - eps * Dm.abs().sum(-1)
    torch.testing.assert_close(R.margin_bounds(lin, x - eps, x + eps, y), ref, rtol=0, atol=1e-12)
    relu_last = nn.Sequential(lin, nn.ReLU())
    lo, hi = R.ibp_bounds(relu_last, x - eps, x + eps)
    naive = (lo.gather(1, y[:, None]) - hi).scatter(1, y[:, None], 0.0)
    torch.testing.assert_close(R.margin_bounds(relu_last, x - eps, x + eps, y), naive, rtol=0, atol=0)


def test_ibp_errors():
    net = _mlp()
    x, y = _data()
    with pytest.raises(TypeError, match="layer 1 is Tanh"):
        R.ibp_bounds(nn.Sequential(nn.Linear(4, 3), nn.Tanh()).to(D), x, x)
    with pytest.raises(TypeError, match="Conv2d"):
        R.ibp_bounds(nn.Conv2d(1, 1, 3), x, x)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        R.ibp_bounds("net", x, x)
    with pytest.raises(ValueError, match="lower must be <= upper"):
        R.ibp_bounds(net, x + 0.1, x)
    with pytest.raises(ValueError, match="the same shape"):
        R.ibp_bounds(net, x, x[:3])
    with pytest.raises(ValueError, match="share device and dtype"):
        R.ibp_bounds(net, x, x.float())
    with pytest.raises(ValueError, match="upper must be finite"):
        R.ibp_bounds(net, x, x + math.inf)
    with pytest.raises(TypeError, match="lower must be a torch.Tensor"):
        R.ibp_bounds(net, None, x)
    with pytest.raises(ValueError, match="expects 4 input features, the bounds reaching it have 3"):
        R.ibp_bounds(net, x[:, :3], x[:, :3])
    with pytest.raises(ValueError, match="expects 8 input features"):
        R.margin_bounds(nn.Sequential(nn.Linear(4, 5), nn.Linear(8, 3)).to(D), x, x, y)
    with pytest.raises(ValueError, match="labels < C = 3"):
        R.margin_bounds(net, x, x, y + 3)
    with pytest.raises(ValueError, match="C >= 2"):
        R.margin_bounds(nn.Linear(4, 1).to(D), x, x, y * 0)
    with pytest.raises(ValueError, match="C > max"):
        R.margin_bounds(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).to(D), x, x, y + 3)
    with pytest.raises(TypeError, match="dtype torch.float64 but the input has torch.float32"):
        R.ibp_bounds(net, x.float(), x.float())


# ------------------------------------------------------------------ certified accuracy

def test_certified_accuracy_matches_the_closed_form_of_a_linear_model():
    torch.manual_seed(2)
    lin = nn.Linear(4, 3).to(D)
    x, y = _data(n=200)
    W, b = lin.weight.detach(), lin.bias.detach()
    z = x @ W.T + b
    prev = 1.0
    for eps in (0.0, 0.02, 0.05, 0.1, 0.3):
        Dm = W[y][:, None, :] - W[None]
        worst = (z.gather(1, y[:, None]) - z) - eps * Dm.abs().sum(-1)
        worst = worst.scatter(1, y[:, None], math.inf)
        ref = float((worst.min(1).values > 0).double().mean())
        got = R.certified_accuracy(lin, x, y, eps)
        assert got == ref and got <= prev
        prev = got
    assert R.certified_accuracy(lin, x, y, 0.0) == float((z.argmax(1) == y).double().mean())


def test_certified_accuracy_is_below_pgd_accuracy():
    net = _mlp()
    x, y = _data(n=100)
    for eps in (0.0, 0.01, 0.05):
        xa = R.pgd_attack(net, x, y, eps, max(eps, 1e-3) / 4, 10, generator=_gen(0), clamp=(0.0, 1.0))
        with torch.no_grad():
            robust = float((net(xa).argmax(1) == y).double().mean())
        assert R.certified_accuracy(net, x, y, eps, clamp=(0.0, 1.0)) <= robust
        assert R.certified_accuracy(net, x, y, eps, clamp=(0.0, 1.0)) >= R.certified_accuracy(net, x, y, eps)


def test_certified_accuracy_errors():
    net = _mlp()
    x, y = _data()
    with pytest.raises(TypeError, match="Tanh"):
        R.certified_accuracy(nn.Sequential(nn.Linear(4, 3), nn.Tanh()).to(D), x, y, 0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        R.certified_accuracy(net, x, y, -1.0)
    with pytest.raises(ValueError, match="y must have shape"):
        R.certified_accuracy(net, x, y[:2], 0.1)


# ------------------------------------------------------------------ training

def _reference_training(model, x, y, epochs, batch_size, lr, seed):
    """Plain Adam on the cross-entropy with the same shuffles: the eps = 0 reference."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = _gen(seed)
    losses = []
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
    return losses


def test_training_with_eps_zero_is_ordinary_training():
    x, y = _data(n=30)
    ref_net = _mlp(seed=4)
    ref = _reference_training(ref_net, x, y, epochs=3, batch_size=8, lr=1e-2, seed=5)
    adv_net = _mlp(seed=4)
    adv = R.adversarial_training(adv_net, x, y, eps=0.0, alpha=0.1, steps=2, epochs=3, batch_size=8, lr=1e-2,
                                 generator=_gen(5))
    ibp_net = _mlp(seed=4)
    ibp = R.ibp_training(ibp_net, x, y, eps=0.0, epochs=3, batch_size=8, lr=1e-2, generator=_gen(5))
    assert len(ref) == len(adv) == len(ibp) == 3 * 4
    # with eps = 0 the worst-case logits -m differ from z by a shift: CE(-m, y) = CE(z, y)
    assert adv == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert ibp == pytest.approx(ref, rel=1e-9, abs=1e-9)
    for net in (adv_net, ibp_net):
        for p, q in zip(net.parameters(), ref_net.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-7, atol=1e-9)


def test_training_restores_modes_and_makes_models_more_robust():
    # two separable blobs in 2-D: the robust and the certified models must hold at eps = 0.3
    g = _gen(0)
    x = torch.cat([torch.randn(60, 2, generator=g, dtype=D) * 0.3 + 1, torch.randn(60, 2, generator=g, dtype=D) * 0.3 - 1])
    y = torch.cat([torch.zeros(60, dtype=torch.long), torch.ones(60, dtype=torch.long)])
    eps = 0.3
    nets = {k: nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)).to(D) for k in ("adv", "ibp")}
    for k, net in nets.items():
        torch.manual_seed(0)
        for layer in net:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        net.eval()
    h_adv = R.adversarial_training(nets["adv"], x, y, eps=eps, alpha=0.1, steps=5, epochs=20, batch_size=32, lr=1e-2,
                                   generator=_gen(1))
    h_ibp = R.ibp_training(nets["ibp"], x, y, eps=eps, epochs=20, batch_size=32, lr=1e-2, warmup_epochs=5,
                           kappa_final=0.0, generator=_gen(1))
    assert all(not net.training for net in nets.values())
    assert all(math.isfinite(v) for v in h_adv + h_ibp) and h_adv[-1] < h_adv[0] and h_ibp[-1] < h_ibp[0]
    xa = R.pgd_attack(nets["adv"], x, y, eps, 0.1, 10, generator=_gen(2))
    with torch.no_grad():
        assert float((nets["adv"](xa).argmax(1) == y).double().mean()) > 0.9
    assert R.certified_accuracy(nets["ibp"], x, y, eps) > 0.9


def test_training_errors():
    net = _mlp()
    x, y = _data()
    kw = dict(eps=0.1, alpha=0.05, steps=1, epochs=1, batch_size=4, lr=1e-2)
    with pytest.raises(TypeError, match="epochs must be an int"):
        R.adversarial_training(net, x, y, **{**kw, "epochs": 1.0})
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        R.adversarial_training(net, x, y, **{**kw, "batch_size": 0})
    with pytest.raises(ValueError, match="lr must be a positive"):
        R.adversarial_training(net, x, y, **{**kw, "lr": -1.0})
    with pytest.raises(ValueError, match="alpha must be a positive"):
        R.adversarial_training(net, x, y, **{**kw, "alpha": 0.0})
    with pytest.raises(ValueError, match="labels < C = 3"):
        R.adversarial_training(net, x, y + 3, **kw)
    frozen = _mlp()
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters that require grad"):
        R.adversarial_training(frozen, x, y, **kw)
    ikw = dict(eps=0.1, epochs=2, batch_size=4, lr=1e-2)
    with pytest.raises(ValueError, match=r"warmup_epochs must be in \[0, 2\]"):
        R.ibp_training(net, x, y, **ikw, warmup_epochs=3)
    with pytest.raises(ValueError, match=r"kappa_final must be in \[0, 1\]"):
        R.ibp_training(net, x, y, **ikw, kappa_final=1.5)
    with pytest.raises(TypeError, match="Tanh"):
        R.ibp_training(nn.Sequential(nn.Linear(4, 3), nn.Tanh()).to(D), x, y, **ikw)
    with pytest.raises(ValueError, match="non-finite"):
        R.ibp_training(_mlp(), x, y, eps=0.1, epochs=2, batch_size=4, lr=1e300)
