"""Image Transformer local 1D block attention against dense attention with the equivalent mask.

    python benchmarks/block_attention.py            # CPU, B=2, dim 256, 8 heads, L 1024 and 4096

All variants are the same attention (tests/layers/test_block_attention.py); the dense ones are
``MultiHeadAttention`` given ``dense_mask(L)``, so they compute L^2 logits (the fused SDPA
kernel in tiles, the eager path all at once), the block one L (query_block + memory). Training
step (forward + backward), interleaved repeats, medians, peak memory from the harness.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from attnlab.explain.capture import capture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.block_attention import LocalBlockSelfAttention1d
from benchmarks.harness import Result, device_info, measure, report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--query-block", type=int, default=128)
    parser.add_argument("--memory", type=int, default=256)
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
        dense = MultiHeadAttention(args.dim, num_heads=args.heads).to(device)
        dense.load_state_dict(block.state_dict())
        mask = block.dense_mask(L, device)
        x = torch.randn(args.batch, L, args.dim, device=device, requires_grad=True)

        def run_dense(
            x: torch.Tensor = x, mask: torch.Tensor = mask, dense: MultiHeadAttention = dense
        ) -> None:
            dense(x, attn_mask=mask).sum().backward()

        def run_eager(
            x: torch.Tensor = x, mask: torch.Tensor = mask, dense: MultiHeadAttention = dense
        ) -> None:
            with capture(dense, differentiable=True):  # the eager path: (B, H, L, L) weights in memory
                dense(x, attn_mask=mask).sum().backward()

        def run_block(x: torch.Tensor = x, block: LocalBlockSelfAttention1d = block) -> None:
            block(x).sum().backward()

        results += measure(
            f"train step L={L}",
            {
                "dense + mask (fused SDPA)": run_dense,
                "dense + mask, eager": run_eager,
                "local 1D blocks (ours)": run_block,
            },
            baseline="dense + mask (fused SDPA)",
            device=device,
            repeats=args.repeats,
        )
    title = (
        f"Local 1D block attention, B={args.batch}, dim {args.dim}, {args.heads} heads, "
        f"query block {args.query_block}, memory {args.memory}, causal"
    )
    report(title, results, device_info(device), args.out)


if __name__ == "__main__":
    main()
