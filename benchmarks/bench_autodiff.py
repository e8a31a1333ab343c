"""Benchmarks of lib/autodiff.py and lib/tensor.py (chapter 2): Value vs micrograd, Tensor vs torch, cheap gradient."""

from __future__ import annotations

import random

import numpy as np
import torch

from benchmarks.common import paired_times, row
from lib import autodiff, data


def value_vs_micrograd():
    """Scalar MLP 4-16-16-1 on 16 points, forward + backward, same weights in both engines."""
    from micrograd.engine import Value as MgValue

    rng = random.Random(0)
    sizes = [4, 16, 16, 1]
    weights = [[[rng.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)] for nin, nout in zip(sizes, sizes[1:])]
    X = [[rng.uniform(-1, 1) for _ in range(4)] for _ in range(16)]
    y = [rng.choice([-1.0, 1.0]) for _ in range(16)]

    def build(Value):
        params = [[[Value(w) for w in neuron] for neuron in layer] for layer in weights]
        loss = Value(0.0)
        for xi, yi in zip(X, y):
            h = [Value(v) for v in xi]
            for li, layer in enumerate(params):
                out = [sum((w * a for w, a in zip(neuron, h)), Value(0.0)) for neuron in layer]
                h = [o.relu() for o in out] if li < len(params) - 1 else out
            loss = loss + (h[0] - yi) * (h[0] - yi)
        return loss, [w for layer in params for neuron in layer for w in neuron]

    def run(Value):
        loss, ws = build(Value)
        loss.backward()
        return loss.data, [w.grad for w in ws]

    ours, theirs = run(autodiff.Value), run(MgValue)
    agree = abs(ours[0] - theirs[0]) < 1e-9 and max(abs(a - b) for a, b in zip(ours[1], theirs[1])) < 1e-9
    t_ours, t_peer = paired_times(lambda: run(autodiff.Value), lambda: run(MgValue), repeats=15)
    return row("autodiff.Value vs micrograd (scalar MLP fwd+bwd)", t_ours, t_peer, 1.0, agree)


def _digits_batch(batch=256):
    d = data.digits(seed=0)
    return d.x_train[:batch].numpy(), d.y_train[:batch].numpy()


def tensor_vs_torch():
    """One SGD training step of a 64-128-128-10 MLP on 256 digits, float32, one thread."""
    xb, yb = _digits_batch()
    net = autodiff.MLP([64, 128, 128, 10], seed=0)
    tnet = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                               torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():  # same weights: ours are (in, out), torch's (out, in)
        for lin, (W, b) in zip([m for m in tnet if isinstance(m, torch.nn.Linear)], zip(net.weights, net.biases)):
            lin.weight.copy_(torch.tensor(W.data.T))
            lin.bias.copy_(torch.tensor(b.data))
    txb, tyb = torch.tensor(xb), torch.tensor(yb)
    loss = autodiff.cross_entropy(net(xb), yb)
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(tnet(txb), tyb)
    tloss.backward()
    agree = abs(float(loss.data) - tloss.item()) < 1e-5 and np.allclose(
        net.weights[0].grad, tnet[0].weight.grad.numpy().T, atol=1e-5)
    opt = torch.optim.SGD(tnet.parameters(), lr=0.01)

    def ours():
        step_loss = autodiff.cross_entropy(net(xb), yb)
        step_loss.backward()
        autodiff.sgd_step(net.parameters(), 0.01)

    def peer():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tnet(txb), tyb).backward()
        opt.step()

    t_ours, t_peer = paired_times(ours, peer, repeats=60)
    return row("autodiff.Tensor vs torch (MLP training step)", t_ours, t_peer, 3.0, agree)


def cheap_gradient():
    """(function + gradient) / function time for the same MLP loss, ours and torch's."""
    xb, yb = _digits_batch()
    net = autodiff.MLP([64, 256, 256, 10], seed=0)
    tnet = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                               torch.nn.ReLU(), torch.nn.Linear(256, 10))
    txb, tyb = torch.tensor(xb), torch.tensor(yb)

    def ours_f():
        autodiff.cross_entropy(net(xb), yb)

    def ours_fg():
        autodiff.cross_entropy(net(xb), yb).backward()

    def torch_f():
        with torch.no_grad():
            torch.nn.functional.cross_entropy(tnet(txb), tyb)

    def torch_fg():
        torch.nn.functional.cross_entropy(tnet(txb), tyb).backward()

    f_ours, fg_ours = paired_times(ours_f, ours_fg, repeats=40)
    f_torch, fg_torch = paired_times(torch_f, torch_fg, repeats=40)
    ours_ratio, torch_ratio = fg_ours / f_ours, fg_torch / f_torch
    return row("cheap-gradient ratio (grad+f)/f: ours | torch", fg_ours, fg_torch, 5.0, True,
               note=f"ours {ours_ratio:.2f}, torch {torch_ratio:.2f} (bound applies to ours)", ratio=ours_ratio)


def rows() -> list[dict]:
    return [value_vs_micrograd(), tensor_vs_torch(), cheap_gradient()]
