"""Learning without a global backward pass: feedback alignment, local losses, forward-forward.

Chapter 16 (``book/16_local_learning.md``, lab ``notebooks/16_local_learning.ipynb``).

Every method trains the same :class:`MLP` and differs only in the signal ``delta_l``
that replaces backprop's ``dL/da_l`` at hidden layer ``l``; the update of ``W_l`` is
always ``delta_l^T h_{l-1}``. Notation: ``h_0 = x``, ``a_l = W_l h_{l-1} + b_l``,
``h_l = f(a_l)``, logits ``a_L``, and ``e = dL/da_L = (softmax(a_L) - onehot(y)) / B``
for the mean cross-entropy of a batch of ``B``. Each ``*_grads`` function returns one
tensor per parameter (order of ``net.parameters()``); :func:`set_grads` hands them to
any ``torch.optim`` optimiser.

* :func:`backprop_grads` (the reference, autograd); :func:`fa_grads` (``B_{l+1}`` in
  place of ``W_{l+1}^T``); :func:`dfa_grads` (``delta_l = (e B_l^T) * f'(a_l)``);
  :func:`drtp_grads` (``e`` replaced by ``-onehot(y) / B``, known in advance);
  :func:`feedback_matrices` draws the ``B``.
* :func:`local_loss_grads` with :func:`aux_heads`: a classifier head per hidden layer,
  gradients stopped between layers.
* :func:`ff_grads`, :func:`ff_input`, :func:`ff_goodness`, :func:`ff_predict`: forward-forward.
* :func:`stored_activations`, :func:`extra_weights`: memory counted by hand;
  :func:`output_error`, :func:`cosine`: what the lab measures alignment with.

References: Lillicrap, Cownden, Tweed & Akerman (2016), "Random synaptic feedback weights
support error backpropagation for deep learning"; Nokland (2016), "Direct Feedback
Alignment Provides Learning in Deep Neural Networks"; Frenkel, Lefebvre & Bol (2021),
"Learning Without Feedback" (DRTP), generalised by tpSGD in "Learning with Local Gradients
at the Edge"; Belilovsky, Eickenberg & Oyallon (2019), "Greedy Layerwise Learning Can Scale
to ImageNet"; Nokland & Eidnes (2019), "Training Neural Networks with Local Error Signals";
Hinton (2022), "The Forward-Forward Algorithm: Some Preliminary Investigations".
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .calculus import _check_finite
from .curvature import _check_generator, _check_int, _check_positive, _check_real
from .runtime import _check_device

__all__ = ["MLP", "output_error", "backprop_grads", "feedback_matrices", "fa_grads", "dfa_grads",
           "drtp_grads", "aux_heads", "local_loss_grads", "ff_input", "ff_goodness", "ff_grads",
           "ff_predict", "set_grads", "cosine", "stored_activations", "extra_weights", "METHODS"]

_ACTIVATIONS = ("tanh", "relu")
_DTYPES = (torch.float32, torch.float64)
_MAX_SIZE = 2**16      # one layer's width
_MAX_PARAMS = 2**27    # 512 MB of float32 weights: a typo beyond this would allocate for long
_NORM_EPS = 1e-4       # forward-forward: h / (||h|| + eps) between layers
#: The methods that :func:`stored_activations` and :func:`extra_weights` count.
METHODS = ("backprop", "fa", "dfa", "drtp", "local", "ff")


# ---------------------------------------------------------------- validation

def _check_sizes(sizes, cap: bool = False) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes, torch.Tensor)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"sizes must be a sequence of ints (layer widths d_0, ..., d_L), got {type(sizes).__name__}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two widths (input and output), got {list(sizes)}")
    sizes = tuple(_check_int(f"sizes[{i}]", d, 1) for i, d in enumerate(sizes))
    if cap and max(sizes) > _MAX_SIZE:  # only where tensors of these sizes are allocated
        raise ValueError(f"sizes must be at most {_MAX_SIZE} each, got {max(sizes)}")
    return sizes


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in _DTYPES:
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_net(net, relu: bool = False) -> "MLP":
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a lib.local.MLP, got {type(net).__name__}")
    if relu and net.activation != "relu":
        raise ValueError(f"net must use activation 'relu' for forward-forward (its goodness, the mean "
                         f"square activity, must be able to exceed the threshold), got {net.activation!r}")
    for p in net.parameters():
        _check_finite("net's parameters", p.detach())
    return net


def _check_x(net: "MLP", x, name: str = "x", width: int | None = None) -> torch.Tensor:
    width = net.sizes[0] if width is None else width
    if not isinstance(x, torch.Tensor) or x.dtype != net.dtype:
        raise TypeError(f"{name} must be a tensor of the network's dtype {net.dtype}, got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != width:
        raise ValueError(f"{name} must have shape (B, {width}) with B >= 1, got {tuple(x.shape)}")
    if x.device != net.device:
        raise ValueError(f"{name} must be on the network's device {net.device}, got {x.device}")
    return _check_finite(name, x.detach())


def _check_y(y, batch: int, n_classes: int, device: torch.device, name: str = "y") -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor of class labels, got "
                        f"{getattr(y, 'dtype', type(y).__name__)}")
    if y.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},) (one label per row of x), got {tuple(y.shape)}")
    if y.device != device:
        raise ValueError(f"{name} must be on the network's device {device}, got {y.device}")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"{name} must hold labels in [0, {n_classes}), got range "
                         f"[{int(y.min())}, {int(y.max())}]")
    return y


def _check_batch(net: "MLP", x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x = _check_x(net, x)
    return x, _check_y(y, x.shape[0], net.sizes[-1], net.device)


def _check_feedback(net: "MLP", feedback, direct: bool) -> list[torch.Tensor]:
    if isinstance(feedback, torch.Tensor) or not isinstance(feedback, (list, tuple)):
        raise TypeError(f"feedback must be a list of tensors (one per hidden layer), got "
                        f"{type(feedback).__name__}")
    d = net.sizes
    shapes = [(d[i + 1], d[-1] if direct else d[i + 2]) for i in range(len(d) - 2)]
    if len(feedback) != len(shapes):
        raise ValueError(f"feedback must hold {len(shapes)} matrices (one per hidden layer), got {len(feedback)}")
    for i, (b, shape) in enumerate(zip(feedback, shapes)):
        if not isinstance(b, torch.Tensor) or b.dtype != net.dtype:
            raise TypeError(f"feedback[{i}] must be a tensor of the network's dtype {net.dtype}, got "
                            f"{getattr(b, 'dtype', type(b).__name__)}")
        if tuple(b.shape) != shape:
            raise ValueError(f"feedback[{i}] must have shape {shape}, got {tuple(b.shape)}")
        if b.device != net.device:
            raise ValueError(f"feedback[{i}] must be on the network's device {net.device}, got {b.device}")
        _check_finite(f"feedback[{i}]", b)
    return [b.detach() for b in feedback]


def _check_gen_device(generator, device) -> torch.device | None:
    """The device to draw on: ``device``, else the generator's; they must agree."""
    _check_generator(generator)
    device = _check_device(device)
    if generator is None:
        return device
    if device is None:
        return torch.device(generator.device)
    if torch.device(generator.device).type != device.type:
        raise ValueError(f"generator must be on the device {device}, got one on {generator.device}")
    return device


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


# ---------------------------------------------------------------- the network

class MLP(torch.nn.Module):
    """A multilayer perceptron ``sizes = (d_0, ..., d_L)`` of ``nn.Linear`` layers (``.layers``).

    ``activation`` (``"tanh"`` or ``"relu"``) follows every layer but the last, whose
    output ``a_L`` are the logits. Weights and biases uniform in ``+-1/sqrt(fan_in)``
    (``nn.Linear``'s default), drawn from ``generator`` if given; dtype float32 or
    float64. ``forward``: ``(B, d_0) -> (B, d_L)``. For forward-forward every layer is
    a hidden ReLU layer and ``forward`` is not used. Chapter 16.
    Reference: the fully connected networks of Lillicrap et al. (2016) and Nokland (2016).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "tanh", generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        sizes = _check_sizes(sizes, cap=True)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        dtype, device = _check_dtype(dtype), _check_gen_device(generator, device)
        n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        if n_params > _MAX_PARAMS:
            raise ValueError(f"sizes {list(sizes)} give {n_params} parameters, more than the {_MAX_PARAMS} allowed")
        self.sizes, self.activation = sizes, activation
        self.layers = torch.nn.ModuleList()
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            layer = torch.nn.Linear(d_in, d_out, dtype=dtype, device=device)
            bound = 1.0 / math.sqrt(d_in)
            with torch.no_grad():
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.rand(p.shape, generator=generator, dtype=dtype, device=p.device) * 2 * bound
                            - bound)
            self.layers.append(layer)

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].weight.dtype

    @property
    def device(self) -> torch.device:
        return self.layers[0].weight.device

    def _f(self, a: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a) if self.activation == "tanh" else torch.relu(a)

    def _f_prime(self, h: torch.Tensor) -> torch.Tensor:
        # f'(a) from h = f(a): tanh' = 1 - h^2, relu' = [h > 0]; so h alone is kept, never a
        return 1 - h * h if self.activation == "tanh" else (h > 0).to(h.dtype)

    def trace(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The forward pass: ``[h_0 = x, ..., h_{L-1}]`` (each ``(B, d_l)``) and logits ``(B, d_L)``."""
        x = _check_x(self, x)
        hs = [x]
        for layer in self.layers[:-1]:
            hs.append(self._f(layer(hs[-1])))
        return hs, self.layers[-1](hs[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``a_L`` of shape ``(B, d_L)`` for ``x`` of shape ``(B, d_0)``."""
        return self.trace(x)[1]


# ---------------------------------------------------------------- backprop and its feedback variants

def output_error(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``e = dL/dlogits = (softmax(logits) - onehot(y)) / B`` for the mean cross-entropy ``L``.

    ``logits``: ``(B, C)`` floating; ``y``: ``(B,)`` int64 labels in ``[0, C)``. Returns ``(B, C)``.
    Reference: the softmax cross-entropy gradient (Nokland 2016 sends it to every layer).
    """
    if not isinstance(logits, torch.Tensor) or not torch.is_floating_point(logits):
        raise TypeError(f"logits must be a floating tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape (B, C) with B, C >= 1, got {tuple(logits.shape)}")
    _check_finite("logits", logits.detach())
    y = _check_y(y, logits.shape[0], logits.shape[1], logits.device)
    p = torch.softmax(logits.detach().to(torch.promote_types(logits.dtype, torch.float32)), dim=1)
    return ((p - F.one_hot(y, logits.shape[1]).to(p.dtype)) / logits.shape[0]).to(logits.dtype)


def backprop_grads(net: MLP, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The gradients of the mean cross-entropy by ``torch.autograd``: the reference.

    ``x``: ``(B, d_0)``, ``y``: ``(B,)`` labels in ``[0, d_L)``. Returns one tensor per
    parameter in the order of ``net.parameters()`` (``W_1, b_1, ..., W_L, b_L``).
    Reference: Rumelhart, Hinton & Williams (1986), backpropagation.
    """
    net = _check_net(net)
    x, y = _check_batch(net, x, y)
    with torch.enable_grad():
        loss = F.cross_entropy(net(x), y)
        grads = torch.autograd.grad(loss, list(net.parameters()))
    return [g.detach() for g in grads]


def feedback_matrices(sizes: Sequence[int], direct: bool = False, scale: float = 1.0,
                      generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                      device: torch.device | str | None = None) -> list[torch.Tensor]:
    """``L - 1`` fixed random feedback matrices, one per hidden layer, for FA, DFA or DRTP.

    ``sizes = (d_0, ..., d_L)``. ``direct=False`` (FA): entry ``i`` stands in for
    ``W_{i+2}^T``, shape ``(d_{i+1}, d_{i+2})``; ``direct=True`` (DFA, DRTP): entry ``i``
    sends the ``d_L`` output errors to hidden layer ``i + 1``, shape ``(d_{i+1}, d_L)``.
    Gaussian entries of standard deviation ``scale / sqrt(columns)``, so that ``B^T B``
    is close to a multiple of the identity.
    Reference: Lillicrap et al. (2016); Nokland (2016).
    """
    sizes = _check_sizes(sizes, cap=True)
    if not isinstance(direct, bool):
        raise TypeError(f"direct must be a bool, got {type(direct).__name__}")
    scale = _check_positive("scale", scale)
    dtype, device = _check_dtype(dtype), _check_gen_device(generator, device)
    out = []
    for i in range(len(sizes) - 2):
        rows, cols = sizes[i + 1], sizes[-1] if direct else sizes[i + 2]
        out.append(torch.randn(rows, cols, generator=generator, dtype=dtype, device=device) * (scale / math.sqrt(cols)))
    return out


def _hidden_signal_grads(net: MLP, x: torch.Tensor, y: torch.Tensor, signal) -> list[torch.Tensor]:
    """Forward pass, then ``delta_l = signal(l, e, delta_{l+1}) * f'(a_l)`` for l = L-1..1 (output exact)."""
    with torch.no_grad():
        hs, logits = net.trace(x)
        e = output_error(logits, y)
        grads, delta = [], e
        for l in range(len(net.layers), 0, -1):  # layer l has input hs[l - 1]
            if l < len(net.layers):
                delta = signal(l, e, delta) * net._f_prime(hs[l])
            grads = [delta.T @ hs[l - 1], delta.sum(0)] + grads
    return grads


def fa_grads(net: MLP, x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Feedback alignment: backprop's chain with fixed matrices ``B`` in place of ``W^T``.

    ``delta_L = e``, ``delta_l = (delta_{l+1} B_{l+1}^T) * f'(a_l)``, ``dW_l = delta_l^T h_{l-1}``,
    ``db_l = sum_b delta_l``. ``feedback[i]``, shape ``(d_{i+1}, d_{i+2})``, replaces
    ``net.layers[i + 1].weight.T``; with exactly those transposes this is backprop.
    ``x``: ``(B, d_0)``, ``y``: ``(B,)``. Returns one tensor per parameter.
    Reference: Lillicrap et al. (2016), Nature Communications 7, 13276.
    """
    net = _check_net(net)
    x, y = _check_batch(net, x, y)
    feedback = _check_feedback(net, feedback, direct=False)
    return _hidden_signal_grads(net, x, y, lambda l, e, delta: delta @ feedback[l - 1].T)


def dfa_grads(net: MLP, x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Direct feedback alignment: ``delta_l = (e B_l^T) * f'(a_l)`` for every hidden layer at once.

    ``feedback[i]``: shape ``(d_{i+1}, d_L)`` (``feedback_matrices(..., direct=True)``). With
    one hidden layer and ``feedback = [W_2^T]`` this is backprop. Returns one tensor per parameter.
    Reference: Nokland (2016), "Direct Feedback Alignment Provides Learning in Deep Neural Networks".
    """
    net = _check_net(net)
    x, y = _check_batch(net, x, y)
    feedback = _check_feedback(net, feedback, direct=True)
    return _hidden_signal_grads(net, x, y, lambda l, e, delta: e @ feedback[l - 1].T)


def drtp_grads(net: MLP, x: torch.Tensor, y: torch.Tensor, feedback: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Direct random target projection: DFA with ``e`` replaced by ``-onehot(y) / B``.

    The target is known before the forward pass, so each layer is updated as soon as it has
    fired, going forward, keeping one layer's input and output at a time; the output layer
    gets its true gradient. ``feedback`` as for :func:`dfa_grads`. Returns one tensor per parameter.
    Reference: Frenkel, Lefebvre & Bol (2021), Frontiers in Neuroscience 15, 629892; tpSGD
    ("Learning with Local Gradients at the Edge") uses projected targets with other local losses.
    """
    net = _check_net(net)
    x, y = _check_batch(net, x, y)
    feedback = _check_feedback(net, feedback, direct=True)
    target = -F.one_hot(y, net.sizes[-1]).to(net.dtype) / x.shape[0]
    grads, h = [], x
    with torch.no_grad():
        for l, layer in enumerate(net.layers[:-1]):
            h_out = net._f(layer(h))
            delta = (target @ feedback[l].T) * net._f_prime(h_out)
            grads += [delta.T @ h, delta.sum(0)]
            h = h_out  # the layer's input is no longer needed
        e = output_error(net.layers[-1](h), y)
        grads += [e.T @ h, e.sum(0)]
    return grads


# ---------------------------------------------------------------- local auxiliary losses

def aux_heads(net: MLP, generator: torch.Generator | None = None) -> torch.nn.ModuleList:
    """One linear classifier ``d_l -> d_L`` per hidden layer (``nn.ModuleList``), like ``net``.

    Reference: Belilovsky et al. (2019); Nokland & Eidnes (2019): auxiliary classifiers as local objectives.
    """
    net = _check_net(net)
    _check_generator(generator)
    heads = torch.nn.ModuleList()
    for d in net.sizes[1:-1]:
        head = MLP((d, net.sizes[-1]), generator=generator, dtype=net.dtype, device=net.device).layers[0]
        heads.append(head)
    return heads


def _check_heads(net: MLP, heads) -> list[torch.nn.Linear]:
    if not isinstance(heads, (list, tuple, torch.nn.ModuleList)):
        raise TypeError(f"heads must be a list or nn.ModuleList of nn.Linear (see aux_heads), got "
                        f"{type(heads).__name__}")
    heads = list(heads)
    if len(heads) != len(net.sizes) - 2:
        raise ValueError(f"heads must hold one head per hidden layer ({len(net.sizes) - 2}), got {len(heads)}")
    for i, (head, d) in enumerate(zip(heads, net.sizes[1:-1])):
        if not isinstance(head, torch.nn.Linear) or head.bias is None or head.weight.dtype != net.dtype \
                or head.weight.device != net.device:
            raise TypeError(f"heads[{i}] must be an nn.Linear with bias, of dtype {net.dtype} on {net.device} "
                            f"(see aux_heads), got {getattr(head, 'weight', type(head).__name__)!r:.60}")
        if (head.in_features, head.out_features) != (d, net.sizes[-1]):
            raise ValueError(f"heads[{i}] must map {d} -> {net.sizes[-1]} features, got "
                             f"{head.in_features} -> {head.out_features}")
        for p in head.parameters():
            _check_finite(f"heads[{i}]'s parameters", p.detach())
    return heads


def local_loss_grads(net: MLP, heads: Sequence[torch.nn.Linear], x: torch.Tensor,
                     y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Supervised local learning: each hidden layer trained by its own classifier head.

    Block ``l`` computes ``h_l = f(W_l sg(h_{l-1}) + b_l)`` (``sg``: stop-gradient) and
    minimises the cross-entropy of ``heads[l-1](h_l)``; the output layer that of the network
    on ``sg(h_{L-1})``. Each block is differentiated (autograd) and freed before the next runs.
    Returns the gradients for ``net.parameters()`` and for the heads (weight, bias each).
    Reference: Belilovsky et al. (2019); Nokland & Eidnes (2019); improved by AugLocal and MAN.
    """
    net = _check_net(net)
    heads = _check_heads(net, heads)
    x, y = _check_batch(net, x, y)
    net_grads, head_grads, h = [], [], x
    with torch.enable_grad():
        for layer, head in zip(net.layers[:-1], heads):
            h = net._f(layer(h.detach()))
            g = torch.autograd.grad(F.cross_entropy(head(h), y),
                                    [layer.weight, layer.bias, head.weight, head.bias])
            net_grads += [g[0], g[1]]
            head_grads += [g[2], g[3]]
        last = net.layers[-1]
        net_grads += list(torch.autograd.grad(F.cross_entropy(last(h.detach()), y), [last.weight, last.bias]))
    return net_grads, head_grads


# ---------------------------------------------------------------- forward-forward

def ff_input(x: torch.Tensor, labels: torch.Tensor | int, n_classes: int, label_scale: float = 1.0) -> torch.Tensor:
    """``[x, label_scale * onehot(labels)]``, shape ``(B, d + n_classes)``: an image with a label.

    ``labels``: ``(B,)`` int64 or one int for all rows (true label: positive data; wrong: negative).
    Reference: Hinton (2022) writes the label into the first pixels; appending keeps the image whole.
    """
    n_classes = _check_int("n_classes", n_classes, 1, _MAX_SIZE)
    label_scale = _check_positive("label_scale", label_scale)
    if not isinstance(x, torch.Tensor) or x.dtype not in _DTYPES:
        raise TypeError(f"x must be a float32 or float64 tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (B, d) with B, d >= 1, got {tuple(x.shape)}")
    _check_finite("x", x)
    if isinstance(labels, int) and not isinstance(labels, bool):
        if not 0 <= labels < n_classes:
            raise ValueError(f"labels must be in [0, {n_classes}), got {labels}")
        labels = torch.full((x.shape[0],), labels, dtype=torch.int64, device=x.device)
    labels = _check_y(labels, x.shape[0], n_classes, x.device, "labels")
    return torch.cat([x, label_scale * F.one_hot(labels, n_classes).to(x.dtype)], dim=1)


def _ff_layers(net: MLP, x: torch.Tensor):
    """Yield ``(layer, input, output)`` through the forward-forward stack, inputs length-normalised."""
    h = x
    for i, layer in enumerate(net.layers):
        if i > 0:  # pass on only the direction of the activity, not its goodness
            h = h / (h.norm(dim=1, keepdim=True) + _NORM_EPS)
        out = torch.relu(layer(h))
        yield layer, h, out
        h = out.detach()


def ff_goodness(net: MLP, x: torch.Tensor) -> torch.Tensor:
    """The goodness ``g_l = mean_j h_{l,j}^2`` of every layer of a forward-forward stack, ``(B, L)``.

    ``net``: a ReLU :class:`MLP`, every layer followed by ReLU, each layer after the first
    fed the length-normalised activity below. ``x``: ``(B, d_0)``, labels attached.
    Reference: Hinton (2022) (sum of squares; the mean only rescales the threshold).
    """
    net = _check_net(net, relu=True)
    x = _check_x(net, x)
    with torch.no_grad():
        return torch.stack([out.square().mean(1) for _, _, out in _ff_layers(net, x)], dim=1)


def ff_grads(net: MLP, x_pos: torch.Tensor, x_neg: torch.Tensor, threshold: float = 2.0) -> list[torch.Tensor]:
    """Forward-forward: each layer raises its goodness on positive data, lowers it on negative.

    Layer ``l`` minimises ``softplus(threshold - g_l(x_pos)) + softplus(g_l(x_neg) - threshold)``
    (mean over the ``2B`` rows), the logistic loss of ``sigmoid(g_l - threshold)``, through its
    own weights only. ``x_pos``, ``x_neg``: ``(B, d_0)``. Returns one tensor per parameter.
    Reference: Hinton (2022), "The Forward-Forward Algorithm: Some Preliminary Investigations".
    """
    net = _check_net(net, relu=True)
    x_pos, x_neg = _check_x(net, x_pos, "x_pos"), _check_x(net, x_neg, "x_neg")
    if x_pos.shape != x_neg.shape:
        raise ValueError(f"x_pos and x_neg must have the same shape, got {tuple(x_pos.shape)} and "
                         f"{tuple(x_neg.shape)}")
    threshold = _check_real("threshold", threshold)
    batch = x_pos.shape[0]
    grads = []
    with torch.enable_grad():
        for layer, _, out in _ff_layers(net, torch.cat([x_pos, x_neg])):
            g = out.square().mean(1)
            loss = torch.cat([F.softplus(threshold - g[:batch]), F.softplus(g[batch:] - threshold)]).mean()
            grads += list(torch.autograd.grad(loss, [layer.weight, layer.bias]))
    return grads


def ff_predict(net: MLP, x: torch.Tensor, n_classes: int, label_scale: float = 1.0) -> torch.Tensor:
    """The label whose input has the largest total goodness, ``(B,)`` int64 (``n_classes`` passes).

    ``x``: ``(B, d)`` images without labels, ``d + n_classes = d_0``.
    Reference: Hinton (2022), goodness accumulated over layers.
    """
    net = _check_net(net, relu=True)
    n_classes = _check_int("n_classes", n_classes, 1, _MAX_SIZE)
    if net.sizes[0] <= n_classes:
        raise ValueError(f"n_classes must be below the network's input width {net.sizes[0]}, got {n_classes}")
    x = _check_x(net, x, width=net.sizes[0] - n_classes)
    scores = torch.stack([ff_goodness(net, ff_input(x, c, n_classes, label_scale)).sum(1)
                          for c in range(n_classes)], dim=1)
    return scores.argmax(1)


# ---------------------------------------------------------------- tools

def _params(name: str, params) -> list[torch.Tensor]:
    if isinstance(params, torch.nn.Module):
        return list(params.parameters())
    if isinstance(params, torch.Tensor) or not isinstance(params, (list, tuple)):
        raise TypeError(f"{name} must be an nn.Module or a list of tensors, got {type(params).__name__}")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not torch.is_floating_point(p):
            raise TypeError(f"{name}[{i}] must be a floating tensor, got {getattr(p, 'dtype', type(p).__name__)}")
    return list(params)


def set_grads(params: torch.nn.Module | Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
    """Copy ``grads`` into ``p.grad`` of each parameter, where ``torch.optim`` looks.

    ``params``: an ``nn.Module`` or a list of tensors; ``grads``: as many finite tensors, same shapes.
    Reference: ``torch.Tensor.grad``, which every ``torch.optim`` optimiser reads.
    """
    params = _params("params", params)
    grads = _params("grads", grads)
    if len(grads) != len(params):
        raise ValueError(f"grads must hold one tensor per parameter ({len(params)}), got {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if g.shape != p.shape or g.dtype != p.dtype or g.device != p.device:
            raise ValueError(f"grads[{i}] must match its parameter ({tuple(p.shape)}, {p.dtype}, {p.device}), got "
                             f"({tuple(g.shape)}, {g.dtype}, {g.device})")
        _check_finite(f"grads[{i}]", g)
    for p, g in zip(params, grads):
        p.grad = g.detach().clone()


def cosine(u: torch.Tensor | Sequence[torch.Tensor], v: torch.Tensor | Sequence[torch.Tensor]) -> float:
    """``<u, v> / (||u|| ||v||)`` of two tensors or two lists of tensors (joined), in float64.

    Reference: the alignment angle of Lillicrap et al. (2016).
    """
    us = [u] if isinstance(u, torch.Tensor) else _params("u", u)
    vs = [v] if isinstance(v, torch.Tensor) else _params("v", v)
    if not us or [t.shape for t in us] != [t.shape for t in vs]:
        raise ValueError(f"u and v must have the same shapes (at least one tensor), got "
                         f"{[tuple(t.shape) for t in us]} and {[tuple(t.shape) for t in vs]}")
    for name, t in [("u", t) for t in us] + [("v", t) for t in vs]:
        if not torch.is_floating_point(t):
            raise TypeError(f"{name} must be floating, got {t.dtype}")
        _check_finite(name, t)
    a = torch.cat([s.detach().reshape(-1).to("cpu", torch.float64) for s in us])
    b = torch.cat([s.detach().reshape(-1).to("cpu", torch.float64) for s in vs])
    sa, sb = float(a.abs().max()), float(b.abs().max())
    if not (sa > 0 and sb > 0):
        raise ValueError(f"u and v must be non-zero, got max |u| = {sa} and max |v| = {sb}")
    a, b = a / sa, b / sb  # scaled to max 1 first: the norm of a tiny or huge vector under- or overflows
    return float((a / a.norm()) @ (b / b.norm()))


# ---------------------------------------------------------------- memory accounting

def stored_activations(method: str, sizes: Sequence[int], batch: int) -> int:
    """Activation floats a method keeps at once for one update (a Python int).

    ``sizes = (d_0, ..., d_L)`` (for ``"ff"`` a forward-forward stack, labels in ``d_0``), batch ``B``;
    ``f'(a_l)`` is computed from ``h_l``, so ``a_l`` is never kept. ``"backprop"``, ``"fa"``,
    ``"dfa"``: all layer inputs wait for the error, plus the probabilities, ``B (d_0 + ... + d_L)``;
    ``"drtp"``: one layer's input and output, ``B max_l (d_{l-1} + d_l)``; ``"local"``: one block
    plus its head's probabilities, ``B max(max_{l<L} (d_{l-1} + d_l + d_L), d_{L-1} + d_L)``;
    ``"ff"``: one layer on ``2B`` rows with one goodness each, ``2B max_l (d_{l-1} + d_l + 1)``.
    Reference: counted by hand (the lab checks it against autograd's saved tensors); Belilovsky
    et al. (2019) and Ma et al. (2024, AugLocal) measure such savings on GPUs.
    """
    method = _check_method(method)
    d = _check_sizes(sizes)
    batch = _check_int("batch", batch, 1)
    pairs = [d[l - 1] + d[l] for l in range(1, len(d))]
    if method in ("backprop", "fa", "dfa"):
        return batch * sum(d)
    if method == "drtp":
        return batch * max(pairs)
    if method == "local":
        return batch * max([p + d[-1] for p in pairs[:-1]] + [pairs[-1]])
    return 2 * batch * max(p + 1 for p in pairs)


def extra_weights(method: str, sizes: Sequence[int]) -> int:
    """Floats of feedback matrices or heads a method needs besides the network (a Python int).

    ``"fa"``: ``sum_{l>=2} d_{l-1} d_l``; ``"dfa"``, ``"drtp"``: ``sum_{l<L} d_l d_L``; ``"local"``:
    ``sum_{l<L} (d_l + 1) d_L``; ``"backprop"``, ``"ff"``: 0.
    Reference: Lillicrap et al. (2016); Nokland (2016); Belilovsky et al. (2019).
    """
    method = _check_method(method)
    d = _check_sizes(sizes)
    hidden = d[1:-1]
    if method == "fa":
        return sum(a * b for a, b in zip(d[1:-1], d[2:]))
    if method in ("dfa", "drtp"):
        return sum(h * d[-1] for h in hidden)
    if method == "local":
        return sum((h + 1) * d[-1] for h in hidden)
    return 0
