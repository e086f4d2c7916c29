"""Mean attention distance per layer of pre-trained ViTs beside a randomly initialised one.

    PYTHONPATH=src python scripts/attention_distance.py \
        --run "CL (DINO)=runs/dino-fmnist/main" --run "MIM (MAE)=runs/mae-fmnist/main" \
        --random dino-vit-p4 --images 256 --figure docs/figures/attention_distance_teachers.png

Each run folder's model hands over its ViT with ``backbone()`` (DINO: the teacher backbone; MAE:
the encoder, run on every patch); ``--random`` adds a fresh preset of the same kind, drawn under
``--seed``, as the floor. The first ``--images`` Fashion-MNIST test images (normalised as in
training) go through each ViT inside ``attnlab.explain.capture``; the distances are
``attnlab.explain.layer_attention_distances`` with [CLS] excluded and rows not renormalised (the
convention of the analyses the seed's Figure 1 quotes). Prints, per model and layer, the mean over
heads with the smallest and largest head in brackets, of the distance and of the entropy of the
patch queries' attention rows (how far from uniform the heads are); writes the distance figure.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from attnlab.data.fashion_mnist import FashionMNISTData
from attnlab.explain import capture, layer_attention_distances, plot_attention_distance
from attnlab.models._submodel import SubModel
from attnlab.models.vit.classifier import backbone_of
from attnlab.models.vit.image_vit import ImageViT
from attnlab.train.composite import build_submodel


def labelled_run(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=RUN_DIR, got {text!r}")
    return label, Path(path)


def vit_of(sub: SubModel, where: str) -> ImageViT:
    """The ViT a pre-training run (or a fresh preset) hands over with ``backbone()``."""
    return backbone_of(build_submodel(sub, where), where)


def add_vit_arguments(parser: argparse.ArgumentParser, images: int) -> None:
    """The ViTs to compare (pre-training runs and a fresh preset) and how many test images."""
    parser.add_argument("--run", type=labelled_run, action="append", default=[], metavar="LABEL=RUN_DIR")
    parser.add_argument(
        "--random", default=None, metavar="PRESET", help="a preset whose fresh ViT is the floor"
    )
    parser.add_argument("--seed", type=int, default=0, help="the random ViT's initialisation")
    parser.add_argument("--images", type=int, default=images)


def vits_and_images(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[dict[str, ImageViT], torch.Tensor]:
    """The ViTs ``add_vit_arguments`` named, by label, and the first Fashion-MNIST test images."""
    if not args.run and args.random is None:
        parser.error("give at least one --run or --random")
    test = FashionMNISTData(seed=0).build("test")
    images = torch.stack([test[i]["input"] for i in range(args.images)])  # (N, 1, 28, 28)
    vits = {label: vit_of(SubModel(init_from=str(path)), label) for label, path in args.run}
    if args.random is not None:
        torch.manual_seed(args.seed)
        vits[f"random init ({args.random})"] = vit_of(SubModel(name=args.random), "--random")
    return vits, images


def measure(vit: ImageViT, images: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Each layer's (H,) mean attention distance in pixels and (H,) mean entropy of the patch
    queries' attention rows in nats (uniform: ln N) over ``images`` (N, C, H, W)."""
    side = images.shape[-1] // vit.config.patch_size
    p = vit.num_prefix_tokens
    with torch.no_grad(), capture(vit) as record:
        vit(images)
    distance = layer_attention_distances(record, (side, side), vit.config.patch_size, num_prefix_tokens=p)
    rows = {name: attn[:, :, p:].double() for name, attn in record.items()}  # (B, H, patches, N)
    entropy = {name: -torch.special.xlogy(a, a).sum(-1).mean((0, 2)) for name, a in rows.items()}
    return distance, entropy


def print_table(series: dict[str, dict[str, torch.Tensor]]) -> None:
    """One markdown row per model: per layer the mean over heads (smallest-largest head)."""
    depth = max(len(layers) for layers in series.values())
    print(f"| model | {' | '.join(f'layer {d}' for d in range(1, depth + 1))} |")
    print(f"| --- |{' ---: |' * depth}")
    for label, layers in series.items():
        cells = [f"{h.mean():.2f} ({h.min():.2f}-{h.max():.2f})" for h in layers.values()]
        print(f"| {label} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_vit_arguments(parser, images=256)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    vits, images = vits_and_images(parser, args)
    series, entropies = {}, {}
    for label, vit in vits.items():
        series[label], entropies[label] = measure(vit.eval(), images)
    print("Mean attention distance (pixels):")
    print_table(series)
    vit = next(iter(vits.values()))
    tokens = vit.num_prefix_tokens + (images.shape[-1] // vit.config.patch_size) ** 2
    print(f"\nMean entropy of a patch query's attention in nats (uniform: {math.log(tokens):.2f}):")
    print_table(entropies)
    if args.figure is not None:
        title = f"Fashion-MNIST test images (first {args.images}); patch distance in pixels"
        print(f"figure: {plot_attention_distance(series, args.figure, title=title)}")


if __name__ == "__main__":
    main()
