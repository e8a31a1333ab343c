"""Tests of lib/denoiser.py: embeddings against their formula, the networks' conditioning and
signature, EMA against its formula, and a short training run that lowers the diffusion loss."""

import math

import pytest
import torch

from lib import denoiser as N
from lib import diffusion as D


def test_timestep_embedding_formula():
    t = torch.tensor([0.0, 1.0, 2.5, 99.0], dtype=torch.float64)
    e = N.timestep_embedding(t, 6, max_period=100.0)
    freqs = [100.0 ** (-k / 3) for k in range(3)]
    ref = torch.tensor([[math.cos(u * w) for w in freqs] + [math.sin(u * w) for w in freqs] for u in t.tolist()],
                       dtype=torch.float64)
    torch.testing.assert_close(e, ref)
    assert N.timestep_embedding(t.float(), 8).dtype == torch.float32


@pytest.mark.parametrize("cls,shape", [(N.ResidualMLP, (5, 64)), (N.ResidualMLP, (5, 1, 8, 8)),
                                       (N.TinyCNN, (5, 1, 8, 8))])
def test_networks_signature_and_conditioning(cls, shape):
    torch.manual_seed(0)
    net = cls(num_classes=10, width=32, depth=2)
    x = torch.randn(shape)
    t = torch.tensor([0.0, 10.0, 50.5, 99.0, 3.0])
    out = net(x, t)
    assert out.shape == x.shape and torch.equal(out, x)  # zero-initialised correction: eps = x_t, 'all noise'
    for p in net.parameters():  # give the output layer weights, so conditioning shows
        torch.nn.init.normal_(p, std=0.2)
    y = torch.tensor([0, 3, -1, 9, 2])
    a, b = net(x, t, y), net(x, t, torch.full((5,), -1))
    torch.testing.assert_close(net(x, t), b)  # labels=None is the null label
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[2], b[2])
    assert not torch.allclose(net(x, t + 1.0), net(x, t))
    assert torch.isfinite(a).all()
    with pytest.raises(ValueError, match=r"labels must be in \[-1, 9\]"):
        net(x, t, torch.tensor([0, 1, 2, 3, 10]))
    with pytest.raises(TypeError, match="t must be a floating tensor"):
        net(x, torch.zeros(5, dtype=torch.int64))
    uncond = cls(width=16, depth=1)
    with pytest.raises(ValueError, match="unconditional model"):
        uncond(x, t, y)


def test_network_errors():
    with pytest.raises(ValueError, match="x_t must have shape"):
        N.ResidualMLP(dim=64)(torch.randn(2, 10), torch.zeros(2))
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 1, H, W\)"):
        N.TinyCNN()(torch.randn(2, 64), torch.zeros(2))
    with pytest.raises(ValueError, match="emb must be even"):
        N.ResidualMLP(emb=7)
    with pytest.raises(ValueError, match="width must be >= 1"):
        N.TinyCNN(width=0)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        N.ResidualMLP(num_classes=2.5)
    with pytest.raises(ValueError, match="dim must be even"):
        N.timestep_embedding(torch.zeros(3), 5)
    with pytest.raises(ValueError, match="t must be finite"):
        N.timestep_embedding(torch.tensor([math.nan]), 4)
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        N.timestep_embedding(torch.zeros(2, 2), 4)


def test_ema_update_formula():
    torch.manual_seed(1)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    N.ema_update(a, b, 0.9)
    torch.testing.assert_close(a.weight, 0.9 * wa + 0.1 * wb)
    N.ema_update(a, b, 0.0)
    torch.testing.assert_close(a.weight, wb)
    with pytest.raises(ValueError, match="decay must be in"):
        N.ema_update(a, b, 1.5)
    with pytest.raises(ValueError, match="same parameters"):
        N.ema_update(a, torch.nn.Linear(3, 3), 0.5)
    with pytest.raises(TypeError, match="torch.nn.Modules"):
        N.ema_update(a, "b", 0.5)


def test_train_denoiser_lowers_the_loss_and_drives_the_samplers():
    s = D.NoiseSchedule.linear(50, 0.002, 0.4)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(256, 4, generator=g) * 0.2 + torch.tensor([1.0, -1.0, 0.5, 0.0])
    labels = torch.randint(0, 3, (256,), generator=g)
    net = N.ResidualMLP(dim=4, width=32, depth=1, num_classes=3, emb=16)
    ema, losses = N.train_denoiser(net, x0, s, labels=labels, steps=300, batch_size=64, lr=3e-3, p_uncond=0.2,
                                   ema_decay=0.9, generator=torch.Generator().manual_seed(3))
    assert len(losses) == 300 and sum(losses[-30:]) < 0.6 * sum(losses[:30])
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    with torch.no_grad():
        out = D.ddim_sample(ema, torch.randn(100, 4, generator=g), s, 10, labels=torch.zeros(100, dtype=torch.int64))
    assert (out.median(0).values - x0.mean(0)).abs().max() < 0.3  # most samples land near the data
    again, _ = N.train_denoiser(N.ResidualMLP(dim=4, width=32, depth=1, num_classes=3, emb=16), x0, s,
                                labels=labels, steps=3, generator=torch.Generator().manual_seed(3))
    assert again is not None


def test_train_denoiser_errors():
    s = D.NoiseSchedule.linear(10, 0.01, 0.2)
    net = N.ResidualMLP(dim=2, width=8, depth=1, emb=8)
    x0 = torch.randn(16, 2)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        N.train_denoiser(lambda x, t: x, x0, s)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        N.train_denoiser(net, x0, s, steps=0)
    with pytest.raises(ValueError, match="lr must be a positive"):
        N.train_denoiser(net, x0, s, lr=-1.0)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        N.train_denoiser(net, x0, s, ema_decay=1.0)
    with pytest.raises(ValueError, match="class indices"):
        N.train_denoiser(net, x0, s, labels=torch.full((16,), -1))
    with pytest.raises(ValueError, match="x0 must be finite"):
        N.train_denoiser(net, x0 * math.nan, s)
