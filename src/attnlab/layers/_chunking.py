"""Running per-sample modules in chunks on CPU."""

from __future__ import annotations

from collections.abc import Callable

import torch

# Samples per call on CPU. The object-centric encoder and decoder keep (N, 32, ~70, ~70)
# activations, which fall out of cache for large N: one decoder call on 288 latents
# took 2.5x the time of chunks of 32 (docs/object_centric.md). GPUs want one call.
CPU_CHUNK = 32


def cpu_chunked(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for an ``fn`` that treats samples independently, in chunks on CPU."""
    if x.device.type != "cpu" or x.shape[0] <= CPU_CHUNK:
        return fn(x)
    return torch.cat([fn(part) for part in torch.split(x, CPU_CHUNK)])
