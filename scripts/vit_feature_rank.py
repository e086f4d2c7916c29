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
from attention_distance import labelled_run, vit_of
from vjepa_features import effective_rank

from attnlab.data.fashion_mnist import FashionMNISTData
from attnlab.models._submodel import SubModel


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=labelled_run, action="append", default=[], metavar="LABEL=RUN_DIR")
    parser.add_argument("--random", default=None, metavar="PRESET", help="a fresh ViT of this preset (floor)")
    parser.add_argument("--seed", type=int, default=0, help="the random ViT's initialisation")
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args()
    test = FashionMNISTData(seed=0).build("test")
    images = torch.stack([test[i]["input"] for i in range(args.images)])  # (N, 1, 28, 28)
    vits = {label: vit_of(SubModel(init_from=str(path)), label) for label, path in args.run}
    if args.random is not None:
        torch.manual_seed(args.seed)
        vits[f"random init ({args.random})"] = vit_of(SubModel(name=args.random), "--random")
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
