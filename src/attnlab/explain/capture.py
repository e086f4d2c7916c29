"""See what a model attends to, and reach its intermediate features by name.

``capture(model)`` turns on attention recording in every attnlab attention layer
of ``model`` for the duration of a ``with`` block::

    with capture(model) as rec:
        out = model(x)
    rec["encoder.blocks.0.attn"]        # weights of the last call, e.g. (B, H, Lq, Lk)
    rec.calls("slot_attn")              # every call's weights (recurrent layers)

The weights are the ones the layer's forward used. With ``differentiable=True``
the layers compute their output from the recorded weights, so gradients of any
score with respect to them exist (gradient-weighted attention).

``features(model, names)`` records the outputs of named submodules through
forward hooks (optionally keeping their gradients) for CAM-style methods. The
record is the output as the module returned it: the rest of the forward gets a
copy, so an in-place op after the module (``nn.ReLU(inplace=True)``) changes the
copy, not the record, and gradients with respect to the record are those of the
module's output (captum's layer methods do the same). Both remove everything
they installed on exit, also after an exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.layers._recording import RecordsAttention


@dataclass
class _Sink:
    name: str
    store: dict[str, list[torch.Tensor]]
    differentiable: bool

    def __call__(self, weights: torch.Tensor) -> None:
        self.store.setdefault(self.name, []).append(weights)


@dataclass
class AttentionRecord(Mapping[str, torch.Tensor]):
    """Attention weights by qualified module name; ``rec[name]`` is the last call's.

    Iterating gives the layer names in the order of their first call, which for a
    feed-forward model is the order of its layers (attention rollout relies on it).
    """

    layers: tuple[str, ...]
    _store: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._store:
            if name in self.layers:
                raise KeyError(f"attention layer '{name}' was not called inside the capture block")
            raise unknown("attention layer", name, self.layers)
        return self._store[name][-1]

    def calls(self, name: str) -> list[torch.Tensor]:
        """All weights ``name`` produced, in call order (recurrent and iterative layers)."""
        self[name]  # validates the name
        return list(self._store[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)


def attention_layers(model: nn.Module) -> dict[str, RecordsAttention]:
    """Every attention layer in ``model`` by qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, RecordsAttention)}


@contextmanager
def capture(
    model: nn.Module, *, differentiable: bool = False, layers: Sequence[str] | None = None
) -> Iterator[AttentionRecord]:
    """Record attention weights of ``model`` (or only of ``layers``) inside the block."""
    available = attention_layers(model)
    if not available:
        raise ConfigError(f"{type(model).__name__} has no attnlab attention layers to capture")
    chosen = list(available) if layers is None else list(layers)
    for name in chosen:
        if name not in available:
            raise unknown("attention layer", name, available)
        if available[name]._attn_sink is not None:
            raise ConfigError(f"attention layer '{name}' is already being captured (nested capture)")
    record = AttentionRecord(layers=tuple(chosen))
    try:
        for name in chosen:
            available[name]._attn_sink = _Sink(name, record._store, differentiable)
        yield record
    finally:
        for name in chosen:
            available[name]._attn_sink = None


@dataclass
class FeatureRecord(Mapping[str, torch.Tensor]):
    """Outputs (and, if asked, gradients) of named submodules from the last forward."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    keep_grad: bool = False

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.outputs:
            raise KeyError(f"module '{name}' produced no output inside the block")
        return self.outputs[name]

    def grad(self, name: str) -> torch.Tensor:
        """Gradient of the last backward with respect to ``name``'s output."""
        if not self.keep_grad:
            raise ConfigError("gradients were not kept: use features(..., keep_grad=True)")
        grad = self[name].grad
        if grad is None:
            raise InputError(f"no gradient reached '{name}': call backward() inside the block first")
        return grad

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)


@contextmanager
def features(model: nn.Module, names: Sequence[str], *, keep_grad: bool = False) -> Iterator[FeatureRecord]:
    """Record the tensor outputs of the named submodules of ``model`` inside the block.

    The rest of the forward runs on copies (see the module docstring)."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules or name == "":
            raise unknown("module", name, [n for n in modules if n])
    record = FeatureRecord(keep_grad=keep_grad)
    handles: list[RemovableHandle] = []

    def hook_for(name: str):  # type: ignore[no-untyped-def]
        def hook(_module: nn.Module, _args: object, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise InputError(f"module '{name}' returns {type(output).__name__}, not a tensor")
            if keep_grad and output.requires_grad:
                output.retain_grad()
            record.outputs[name] = output
            return output.clone()  # later in-place ops change the copy, not the record

        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(hook_for(name)))
        yield record
    finally:
        for handle in handles:
            handle.remove()
