"""Image Transformer local 1D and 2D block attention against dense attention with the equivalent mask.

    python benchmarks/block_attention.py  # CPU, B=2, dim 256, 8 heads, L 1024 and 4096, images 32 and 64

All variants are the same attention (tests/layers/test_block_attention.py, test_block_attention2d.py);
the dense ones are ``MultiHeadAttention`` given ``dense_mask``, so they compute L^2 logits (the
fused SDPA kernel in tiles, the eager path all at once), the block ones L x (memory block) logits.
Training step (forward + backward), interleaved repeats, medians, peak memory from the harness.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from attnlab.explain.capture import capture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.block_attention import LocalBlockSelfAttention1d
from attnlab.layers.block_attention2d import LocalBlockSelfAttention2d
from benchmarks.harness import Result, device_info, measure, report


def compare(
    name: str,
    block: torch.nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    args: argparse.Namespace,
    device: torch.device,
) -> list[Result]:
    """The block layer on ``x`` ((B, L, D) or (B, H, W, D)) against its dense twin on (B, L, D)."""
    dense = MultiHeadAttention(args.dim, num_heads=args.heads).to(device)
    dense.load_state_dict(block.state_dict())
    seq = lambda: x.reshape(x.shape[0], -1, args.dim)  # (B, L, D) row-major

    def run_dense() -> None:
        dense(seq(), attn_mask=mask).sum().backward()

    def run_eager() -> None:
        with capture(dense, differentiable=True):  # the eager path: (B, H, L, L) weights in memory
            dense(seq(), attn_mask=mask).sum().backward()

    def run_block() -> None:
        block(x).sum().backward()

    variants: dict[str, Callable[[], None]] = {
        "dense + mask (fused SDPA)": run_dense,
        "dense + mask, eager": run_eager,
        "local blocks (ours)": run_block,
    }
    return measure(name, variants, baseline="dense + mask (fused SDPA)", device=device, repeats=args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--images", type=int, nargs="+", default=[32, 64], help="square image sides")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--query-block", type=int, default=128)
    parser.add_argument("--memory", type=int, default=256)
    parser.add_argument("--query-block-2d", type=int, nargs=2, default=[8, 16])
    parser.add_argument("--memory-2d", type=int, nargs=2, default=[8, 8])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/block_attention.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    results: list[Result] = []
    for L in args.lengths:
        torch.manual_seed(0)
        block = LocalBlockSelfAttention1d(
            args.dim, num_heads=args.heads, query_block=args.query_block, memory=args.memory
        ).to(device)
        x = torch.randn(args.batch, L, args.dim, device=device, requires_grad=True)
        results += compare(f"1D, train step L={L}", block, x, block.dense_mask(L, device), args, device)
    for side in args.images:
        torch.manual_seed(0)
        block2d = LocalBlockSelfAttention2d(
            args.dim,
            num_heads=args.heads,
            query_block=tuple(args.query_block_2d),
            memory=tuple(args.memory_2d),
        ).to(device)
        x = torch.randn(args.batch, side, side, args.dim, device=device, requires_grad=True)
        mask = block2d.dense_mask(side, side, device)
        results += compare(f"2D, train step {side}x{side}", block2d, x, mask, args, device)
    title = (
        f"Local block attention, B={args.batch}, dim {args.dim}, {args.heads} heads, causal; 1D: query "
        f"block {args.query_block}, memory {args.memory}; 2D: query block {args.query_block_2d}, "
        f"memory {args.memory_2d} (rows above, columns each side)"
    )
    report(title, results, device_info(device), args.out)


if __name__ == "__main__":
    main()
