"""Why gradient descent generalises: coherent gradients and grokking.

Chapter 8 (``book/08_generalization.md``, lab ``notebooks/08_generalization.ipynb``).

* Gradient coherence. :func:`per_example_gradients` stacks the gradients
  ``g_i = grad_theta loss(f(x_i), y_i)`` of ``m`` examples into an ``(m, P)`` matrix
  (``torch.func``: ``vmap(grad(...))``), and :func:`coherence` measures how well
  they agree,

      alpha = E_{i,j}[g_i . g_j] / E_i[g_i . g_i] = ||mean_i g_i||^2 / mean_i ||g_i||^2,

  with ``i, j`` drawn independently and uniformly from the sample. ``alpha`` is 1
  when all gradients are equal and ``1/m`` when they are pairwise orthogonal (the
  "orthogonal limit"); ``m * alpha`` is the *m-coherence* of Chatterjee &
  Zielinski, about the number of examples a step on one example's gradient helps.
  Real labels give more coherent gradients than random ones.
* Grokking on modular arithmetic. :func:`modular_mlp` builds the
  one-hot(a) ++ one-hot(b) -> ReLU -> logits network, :func:`train_modular` trains
  it full-batch with AdamW and records the accuracy curves, and
  :func:`fourier_spectrum` and :func:`fourier_concentration` show the periodic
  structure the embedding acquires when the network generalises.

References: Zhang, Bengio, Hardt, Recht & Vinyals (2017), "Understanding deep
learning requires rethinking generalization"; Chatterjee (2020), "Coherent
Gradients: An Approach to Understanding Generalization in Gradient Descent-based
Optimization"; Chatterjee & Zielinski (2022), "On the Generalization Mystery in
Deep Learning"; Power, Burda, Edwards, Babuschkin & Misra (2022), "Grokking:
Generalization Beyond Overfitting on Small Algorithmic Datasets"; Nanda, Chan,
Lieberum, Smith & Steinhardt (2023), "Progress measures for grokking via
mechanistic interpretability".
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from .data import Split, one_hot_pairs
from .curvature import _check_int
from .runtime import _check_device

__all__ = ["per_example_gradients", "coherence", "modular_mlp", "train_modular", "fourier_spectrum",
           "fourier_concentration"]


# ---------------------------------------------------------------- validation

def _check_tensor(name: str, t, min_ndim: int = 0, floating: bool = True) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and not torch.is_floating_point(t):
        raise TypeError(f"{name} must have a real floating dtype, got {t.dtype}")
    if t.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if torch.is_floating_point(t) and not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return t


def _check_number(name: str, value, low: float, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value) or value < low or (open_low and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if open_low else '>='} {low}, got {value}")
    return value


def _check_module(model) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


# ---------------------------------------------------------------- coherence

def per_example_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                          loss_fn: Callable = F.cross_entropy,
                          chunk_size: int | None = None) -> torch.Tensor:
    """The gradient of each example's loss w.r.t. all trainable parameters, stacked.

    ``x``: ``(m, ...)`` inputs; ``y``: ``(m, ...)`` targets (class indices for the
    default cross-entropy). ``loss_fn(output, target)`` is called on a batch of
    one, ``model(x_i[None])`` and ``y_i[None]``, and must return a scalar. The
    model must treat examples independently (no batch-norm in training mode).
    Returns ``G`` of shape ``(m, P)``: row ``i`` is ``grad_theta loss_i``, with
    the parameters in ``named_parameters()`` order, flattened; computed in one
    vectorised pass with ``torch.func.vmap(torch.func.grad(...))``; ``chunk_size``
    bounds the examples per pass (memory). Chapter 8.
    Reference: Chatterjee & Zielinski (2022), "On the Generalization Mystery in
    Deep Learning" (per-example gradients ``g_z``).
    """
    _check_module(model)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    x = _check_tensor("x", x, min_ndim=1)
    y = _check_tensor("y", y, min_ndim=1, floating=False)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must have the same number of examples, got {x.shape[0]} and {y.shape[0]}")
    if chunk_size is not None:
        chunk_size = _check_int("chunk_size", chunk_size, 1)
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError(f"model has no trainable parameters ({type(model).__name__})")
    buffers = dict(model.named_buffers())
    with torch.no_grad():  # check the loss on the first example, outside vmap
        first = loss_fn(model(x[:1]), y[:1])
    if not isinstance(first, torch.Tensor) or first.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got "
                         f"{tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__}")

    def loss_i(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**p, **buffers}, (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0)).reshape(())

    grads = vmap(grad(loss_i), in_dims=(None, 0, 0), chunk_size=chunk_size)(params, x, y)
    G = torch.cat([grads[name].reshape(x.shape[0], -1) for name in params], dim=1).detach()
    if not torch.isfinite(G).all():
        raise ValueError("per-example gradients are not finite (NaN or inf): check loss_fn and the model")
    return G


def coherence(G: torch.Tensor) -> torch.Tensor:
    """Gradient coherence ``alpha = ||mean_i g_i||^2 / mean_i ||g_i||^2`` (0-dim tensor).

    ``G``: ``(m, P)`` per-example gradients (rows), e.g. from
    :func:`per_example_gradients`. Equal to the expected dot product of two
    independently drawn rows divided by the expected squared norm of one row,
    so ``1/m <= alpha <= 1`` for pairwise orthogonal to identical rows (and
    ``alpha`` can fall below ``1/m`` when rows point against each other);
    ``m * alpha`` is the m-coherence. Raises ValueError if every row is zero.
    Chapter 8.
    Reference: Chatterjee & Zielinski (2022), "On the Generalization Mystery in
    Deep Learning" (the coherence metric ``alpha``); Chatterjee & Zielinski (2020),
    "Making Coherence Out of Nothing At All" (m-coherence).
    """
    G = _check_tensor("G", G)
    if G.ndim != 2:
        raise ValueError(f"G must be an (m, P) matrix of per-example gradients, got shape {tuple(G.shape)}")
    mean_sq = (G * G).sum(1).mean()
    if mean_sq == 0:
        raise ValueError("G has only zero rows: coherence is undefined")
    g_bar = G.mean(0)
    return (g_bar @ g_bar) / mean_sq


# ---------------------------------------------------------------- grokking

def modular_mlp(p: int, hidden: int = 256, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.nn.Sequential:
    """``Linear(2p, hidden) -> ReLU -> Linear(hidden, p)``: logits of ``(a + b) mod p``.

    Input: ``(N, 2p)`` concatenated one-hot codes of ``a`` and ``b``
    (:func:`lib.data.one_hot_pairs`); output ``(N, p)`` logits. Parameters are
    drawn like PyTorch's default ``nn.Linear`` initialisation, ``U(-1/sqrt(fan_in),
    1/sqrt(fan_in))``, but from ``generator`` (on its device) so that the seed fixes
    them. Columns ``0..p-1`` of the first weight embed ``a``, columns
    ``p..2p-1`` embed ``b`` (see :func:`fourier_spectrum`). Chapter 8.
    Reference: the grokking set-up of Power et al. (2022), with an MLP in place of
    their transformer (as in the book plan's feasibility notes).
    """
    p = _check_int("p", p, 2)
    hidden = _check_int("hidden", hidden, 1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    net = torch.nn.Sequential(torch.nn.Linear(2 * p, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, p))
    device = _check_device(device)
    draw_on = generator.device if generator is not None else (device or "cpu")
    with torch.no_grad():
        for layer in (net[0], net[2]):
            bound = 1.0 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                u = torch.rand(param.shape, generator=generator, device=draw_on)
                param.copy_((2 * u - 1) * bound)
    return net.to(device) if device is not None else net.to(draw_on)


def train_modular(model: torch.nn.Module, split: Split, p: int, steps: int, lr: float = 1e-2,
                  weight_decay: float = 1.0, betas: tuple[float, float] = (0.9, 0.98),
                  eval_every: int = 10, probe: Callable[[torch.nn.Module], torch.Tensor] | None = None
                  ) -> dict[str, torch.Tensor]:
    """Train on a modular-arithmetic table with full-batch AdamW; record accuracy curves.

    ``split``: :func:`lib.data.modular_table` output (int pairs and labels, on the
    model's device); the inputs are one-hot encoded here. Every ``eval_every``
    steps (and at step 0) records the training loss and the train and test
    accuracy and, if given, ``probe(model)`` (e.g. a copy of the embedding).
    Returns a dict of tensors: ``"step"`` ``(T,)`` int64, ``"train_loss"``,
    ``"train_acc"``, ``"test_acc"`` ``(T,)`` on the CPU, and ``"probe"``
    ``(T, ...)`` when ``probe`` is given. Trains ``model`` in place.
    Chapter 8. Reference: Power et al. (2022), grokking (weight decay makes it
    appear); Loshchilov & Hutter (2019), AdamW (decoupled weight decay).
    """
    _check_module(model)
    if not isinstance(split, Split):
        raise TypeError(f"split must be a lib.data.Split (from data.modular_table), got {type(split).__name__}")
    p = _check_int("p", p, 2)
    steps = _check_int("steps", steps, 0)
    lr = _check_number("lr", lr, 0.0, open_low=True)
    weight_decay = _check_number("weight_decay", weight_decay, 0.0)
    eval_every = _check_int("eval_every", eval_every, 1)
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if probe is not None and not callable(probe):
        raise TypeError(f"probe must be callable or None, got {type(probe).__name__}")
    params = [q for q in model.parameters() if q.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    big = torch.finfo(params[0].dtype).max
    if lr > big or lr * weight_decay > big:
        raise ValueError(f"lr ({lr}) and lr * weight_decay must fit the parameters' dtype {params[0].dtype}")
    x_tr, x_te = one_hot_pairs(split.x_train, p), one_hot_pairs(split.x_test, p)
    y_tr, y_te = split.y_train, split.y_test
    if x_tr.device != params[0].device:
        raise ValueError(f"split is on {x_tr.device} but the model is on {params[0].device}")
    x_tr, x_te = x_tr.to(params[0].dtype), x_te.to(params[0].dtype)
    opt = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    record: dict[str, list] = {"step": [], "train_loss": [], "train_acc": [], "test_acc": [], "probe": []}

    def evaluate(step: int) -> None:
        with torch.no_grad():
            logits = model(x_tr)
            record["step"].append(step)
            record["train_loss"].append(F.cross_entropy(logits, y_tr).item())
            record["train_acc"].append((logits.argmax(1) == y_tr).float().mean().item())
            record["test_acc"].append((model(x_te).argmax(1) == y_te).float().mean().item())
            if probe is not None:
                record["probe"].append(torch.as_tensor(probe(model)).detach().cpu().clone())

    evaluate(0)
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x_tr), y_tr)
        if not torch.isfinite(loss):
            raise ValueError(f"training diverged at step {step} (loss {loss.item()}): lower lr")
        loss.backward()
        opt.step()
        if step % eval_every == 0:
            evaluate(step)
    out = {"step": torch.tensor(record["step"], dtype=torch.int64)}
    for key in ("train_loss", "train_acc", "test_acc"):
        out[key] = torch.tensor(record[key], dtype=torch.float64)
    if probe is not None:
        out["probe"] = torch.stack(record["probe"])
    return out


def fourier_spectrum(W: torch.Tensor, p: int) -> torch.Tensor:
    """Each row's share of squared norm at each frequency of ``Z/pZ``.

    ``W``: ``(d, p)``, column ``a`` the embedding of token ``a`` (e.g. the first
    ``p`` columns of :func:`modular_mlp`'s first weight, so that row ``r`` is what
    hidden unit ``r`` reads from ``a``). Takes the discrete Fourier transform along
    each row, ``hat W[r, k] = sum_a W[r, a] exp(-2 pi i k a / p)``, and returns
    ``S`` of shape ``(d, p // 2 + 1)``: ``S[r, k]`` is the share of row ``r``'s
    ``sum_k |hat W[r, k]|^2`` at frequencies ``k`` and ``p - k`` together (a real
    row has equal power at both). Each row of ``S`` sums to 1 (Parseval); an
    all-zero row of ``W`` gives a zero row. Chapter 8.
    Reference: Nanda et al. (2023), "Progress measures for grokking via mechanistic
    interpretability" (the Fourier structure of the embeddings).
    """
    p = _check_int("p", p, 2)
    W = _check_tensor("W", W)
    if W.ndim != 2 or W.shape[1] != p:
        raise ValueError(f"W must have shape (d, p) with p = {p} columns (one per token), got {tuple(W.shape)}")
    power = torch.fft.fft(W.to(torch.float64), dim=1).abs().pow(2)  # (d, p)
    S = power[:, : p // 2 + 1].clone()
    S[:, 1:(p + 1) // 2] += power.flip(1)[:, : (p - 1) // 2]  # add frequency p - k to k
    total = S.sum(1, keepdim=True)
    return torch.where(total > 0, S / total.clamp_min(torch.finfo(torch.float64).tiny), 0.0).to(W.dtype)


def fourier_concentration(W: torch.Tensor, p: int) -> torch.Tensor:
    """How periodic an embedding's rows are: the norm-weighted mean of each row's top-frequency share.

    ``W``: ``(d, p)`` as in :func:`fourier_spectrum`. Returns the 0-dim tensor
    ``sum_r ||W_r||^2 max_k S[r, k] / sum_r ||W_r||^2`` in ``[1 / (p // 2 + 1), 1]``:
    1 when every row is a single sinusoid ``cos(2 pi k a / p + phi)``, about
    ``0.2`` for random rows with ``p = 31``. A progress measure of grokking: it
    rises as the network generalises. Chapter 8.
    Reference: Nanda et al. (2023), "Progress measures for grokking via mechanistic
    interpretability" (Fourier sparsity of the embeddings).
    """
    S = fourier_spectrum(W, p)
    weight = W.to(torch.float64).pow(2).sum(1)
    if weight.sum() == 0:
        raise ValueError("W is all zeros: its spectrum is undefined")
    return ((weight * S.to(torch.float64).max(1).values).sum() / weight.sum()).to(W.dtype)
