"""Effective rank of a pre-trained ViT's features, block by block (docs/distillation.md).

    PYTHONPATH=src python scripts/vit_feature_rank.py --run "DINO=runs/dino-fmnist/s0" \\
        --run "MAE=runs/mae-fmnist/s0" --random dino-vit-p4

Per ViT (a pre-training run's backbone, or a fresh preset as the floor), on the first ``--images``
Fashion-MNIST test images: the effective rank (exp of the entropy of the normalised singular values,
after centring) of the [CLS] token and of all tokens at the output of each block, through the final
norm (``ImageViT.intermediate_layers``). What enters the last block is what Partial-1 trains on.
"""

from __future__ import annotations

import argparse

import torch
from attention_distance import add_vit_arguments, vits_and_images

from attnlab.metrics.rank import effective_rank


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_vit_arguments(parser, images=512)
    args = parser.parse_args()
    vits, images = vits_and_images(parser, args)
    print("| ViT | [CLS] per block 1..L | all tokens per block 1..L |")
    print("| --- | --- | --- |")
    with torch.no_grad():
        for label, vit in vits.items():
            layers = vit.eval().intermediate_layers(images, n=len(vit.blocks))  # L x (N, 1 + h*w, D)
            cls = " / ".join(f"{effective_rank(x[:, 0]):.1f}" for x in layers)
            tokens = " / ".join(f"{effective_rank(x.reshape(-1, x.shape[-1])):.1f}" for x in layers)
            print(f"| {label} | {cls} | {tokens} |")


if __name__ == "__main__":
    main()
