"""Models built from a task spec, out of plainly specified torch layers only.

Every layer here has math another backend can mirror op for op: ``nn.Linear``,
the spec's activation (ReLU or SiLU), ``nn.Conv2d`` (strides instead of pooling),
flatten, ``nn.Embedding``,
``nn.LayerNorm`` and attention written out (query/key/value linears,
``q @ kᵀ`` times a binary32 scale, a causal mask, softmax, ``@ v``, an output
linear). No fused kernels, no ``scaled_dot_product_attention``.

Parameter names (``named_parameters``) are the module paths below; in a
checkpoint they appear as ``param/<module path>`` (see ``agents.learning.layout``).

- mlp: ``layers.<i>.weight|bias``
- cnn: ``convs.<i>.weight|bias``, then ``linears.<i>.weight|bias``
- transformer: ``tokens.weight``, ``positions.weight``,
  ``blocks.<i>.norm1.weight|bias``, ``blocks.<i>.attention.query|value|output.weight|bias``,
  ``blocks.<i>.attention.key.weight`` (no bias),
  ``blocks.<i>.norm2.weight|bias``, ``blocks.<i>.mlp_in.weight|bias``,
  ``blocks.<i>.mlp_out.weight|bias``, ``norm.weight|bias``, ``head.weight|bias``
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from agents.learning.spec import Activation, CNNSpec, MLPSpec, TaskSpec, TransformerSpec

LAYER_NORM_EPS = 1e-5

ActivationFunction = Callable[[torch.Tensor], torch.Tensor]


def activation_function(name: Activation) -> ActivationFunction:
    """The torch function of a spec's activation: ``relu`` or ``silu`` (``x · sigmoid(x)``)."""
    return torch.relu if name == "relu" else functional.silu


class MLP(nn.Module):
    """``x.flatten(1)`` through linear layers, the activation after every one but the last."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        widths = [spec.inputs, *spec.hidden, spec.outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.activation = activation_function(spec.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.activation(x)
        return x


class CNN(nn.Module):
    """Conv2d + activation layers, flatten, then an MLP head."""

    def __init__(self, spec: CNNSpec) -> None:
        super().__init__()
        channels = spec.input[0]
        convs = []
        for conv in spec.convs:
            convs.append(
                nn.Conv2d(
                    channels, conv.channels, conv.kernel, stride=conv.stride, padding=conv.padding
                )
            )
            channels = conv.channels
        self.convs = nn.ModuleList(convs)
        c, h, w = spec.feature_map()
        widths = [c * h * w, *spec.hidden, spec.outputs]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.activation = activation_function(spec.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.activation(conv(x))
        x = x.flatten(1)
        last = len(self.linears) - 1
        for i, layer in enumerate(self.linears):
            x = layer(x)
            if i < last:
                x = self.activation(x)
        return x


class CausalSelfAttention(nn.Module):
    """Multi-head attention, written out: no fused attention kernel."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        # No key bias: it adds the same amount to every score of a query, which softmax
        # ignores, so its true gradient is zero and Adam would amplify rounding noise into steps.
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.output = nn.Linear(width, width)
        # 1/sqrt(head width) rounded once to binary32: a constant, not a libm call at run time.
        self.scale = float(np.float32(1.0 / np.sqrt(np.float64(width // heads))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        head = width // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, time, self.heads, head).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-2, -1)) * self.scale
        future = torch.ones(time, time, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(batch, time, width)
        out: torch.Tensor = self.output(y)
        return out


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attention(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, width: int, heads: int, ff: int, activation: Activation = "relu") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attention = CausalSelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp_in = nn.Linear(width, ff)
        self.mlp_out = nn.Linear(ff, width)
        self.activation = activation_function(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        out: torch.Tensor = x + self.mlp_out(self.activation(self.mlp_in(self.norm2(x))))
        return out


class Transformer(nn.Module):
    """Token and learned position embeddings, blocks, a final LayerNorm and a linear head."""

    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.tokens = nn.Embedding(spec.vocab, spec.width)
        self.positions = nn.Embedding(spec.context, spec.width)
        self.blocks = nn.ModuleList(
            Block(spec.width, spec.heads, spec.ff, spec.activation) for _ in range(spec.layers)
        )
        self.norm = nn.LayerNorm(spec.width, eps=LAYER_NORM_EPS)
        self.head = nn.Linear(spec.width, spec.vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tokens(idx) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.norm(x))
        return logits


def build_model(spec: TaskSpec) -> nn.Module:
    """The torch module of the spec's architecture (its initial values are not the task's:
    load the state from ``agents.learning.initialization``)."""
    model = spec.model
    if isinstance(model, MLPSpec):
        return MLP(model)
    if isinstance(model, CNNSpec):
        return CNN(model)
    return Transformer(model)


def stage_output(
    model: nn.Module, spec: TaskSpec, first: int, end: int, x: torch.Tensor
) -> torch.Tensor:
    """Units ``first`` … ``end − 1`` of ``model`` (``agents.learning.stages``): ``x`` is the
    batch's inputs when ``first`` is 0, else what the previous stage passed on."""
    if isinstance(model, MLP):
        h = x.flatten(1) if first == 0 else x
        last = len(model.layers) - 1
        for i in range(first, end):
            h = model.layers[i](h)
            if i < last:
                h = model.activation(h)
        return h
    if isinstance(model, Transformer):
        if first == 0:
            positions = torch.arange(x.shape[1], device=x.device)
            h = model.tokens(x) + model.positions(positions)
        else:
            h = x
        for i in range(first, end):
            h = model.blocks[i](h)
        if end == len(model.blocks):
            h = model.head(model.norm(h))
        return h
    raise ValueError(f"a {spec.model.kind} is not cut into stages")


def loss_value(spec: TaskSpec, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The spec's loss, averaged over the batch (and over positions for a transformer)."""
    if spec.loss == "mse":
        return functional.mse_loss(output, target)
    if output.dim() == 3:
        return functional.cross_entropy(output.flatten(0, 1), target.flatten())
    return functional.cross_entropy(output, target)
