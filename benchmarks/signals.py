"""1D-SAN's block against a convolution block, and SAN's aggregation without and with unfolding.

    python benchmarks/signals.py              # CPU, batch 128 windows of 64 steps, width 64
    python benchmarks/signals.py --device cuda

Cases (training step: forward + backward; interleaved repeats, medians; peak memory from the
harness, plus the bytes autograd saves for the backward pass, which is deterministic):
1. ``SAB1d`` (pairwise attention, dilation 5) against a residual conv block with the same layout
   (BN-ReLU, dilated Conv1d k=3 to ``mid`` channels, BN-ReLU, 1x1 conv back) whose ``mid`` is chosen
   so the parameter counts match as closely as possible.
2. The aggregation sum_k w_k ⊙ v_{i + d k}: our unfold-free autograd function
   (``layers/_aggregation.py``) against the unfold-based one (``footprint`` copies the values
   into (B, C, K, N)). Target (issue 23): at least 2x less memory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from attnlab.layers._aggregation import aggregate_1d
from attnlab.layers.pairwise import footprint
from attnlab.models.signals.san1d import SAB1d, SAN1DConfig
from benchmarks.harness import Result, device_info, measure, report


class ConvBlock(nn.Module):
    """SAB1d's layout with a dilated convolution in place of the attention."""

    def __init__(self, width: int, mid: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Conv1d(width, mid, 3, padding=dilation, dilation=dilation, padding_mode="reflect"),
            nn.BatchNorm1d(mid),
            nn.ReLU(),
            nn.Conv1d(mid, width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def parameters(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def matching_conv(block: SAB1d, width: int, dilation: int) -> ConvBlock:
    target = parameters(block)
    mid = min(range(1, 4 * width), key=lambda m: abs(parameters(ConvBlock(width, m, dilation)) - target))
    return ConvBlock(width, mid, dilation)


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``fn``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def unfolded(values: torch.Tensor, weights: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    v = footprint(values, kernel_size, dilation)  # (B, C, K, N)
    B, C, K, N = v.shape
    A = weights.shape[1]
    return (v.view(B, C // A, A, K, N) * weights[:, None]).sum(3).reshape(B, C, N)


def train_step(fn: Callable[[], torch.Tensor]) -> Callable[[], object]:
    def run() -> object:
        fn().sum().backward()
        return None

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/signals.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    B, T, W = args.batch, args.steps, args.width
    config = SAN1DConfig(width=W, rel_dim=W // 16, mid_dim=W // 4)
    sab = SAB1d(config, dilation=5).to(device)
    conv = matching_conv(sab, W, 5).to(device)
    x = torch.randn(B, W, T, device=device, requires_grad=True)
    blocks = {
        f"SAB1d ({parameters(sab):,} params)": lambda: sab(x),
        f"conv block, mid {conv.body[2].out_channels} ({parameters(conv):,} params)": lambda: conv(x),
    }
    A, K = config.mid_dim // config.share_planes, 3
    values = torch.randn(B, config.mid_dim, T, device=device, requires_grad=True)
    weights = torch.rand(B, A, K, T, device=device, requires_grad=True)
    aggregation = {
        "unfold-based": lambda: unfolded(values, weights, K, 5),
        "unfold-free (ours)": lambda: aggregate_1d(values, weights, K, 5),
    }
    results: list[Result] = []
    saved: dict[str, int] = {}
    for case, variants in (("block, train step", blocks), ("aggregation, train step", aggregation)):
        baseline = next(iter(variants))
        results += measure(
            case,
            {name: train_step(fn) for name, fn in variants.items()},
            baseline=baseline,
            device=device,
            repeats=args.repeats,
        )
        saved |= {f"{case}: {name}": saved_bytes(fn) for name, fn in variants.items()}
    info = device_info(device) | {"batch": B, "steps": T, "width": W, "saved_for_backward_bytes": saved}
    report(f"1D-SAN block and SAN aggregation, B={B}, T={T}, width {W}", results, info, args.out)
    for name, size in saved.items():
        print(f"saved for backward  {name}: {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
