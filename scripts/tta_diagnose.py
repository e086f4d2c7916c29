"""Where a translator's test-time augmentation gains and loses, per classifier (docs/tta.md).

    python scripts/tta_diagnose.py RUNS_DIR [--seeds 0 1 2] [--translator stargan2_ca]

For each seed S and classifier C (``cnn5``, ``resnet20``): the classifier run ``RUNS_DIR/C-sS`` and
the translator ``RUNS_DIR/TRANSLATOR-sS``, on the translator's test split (500 images per domain).
Prints, as accuracy %:

* ``target raw`` / ``target N=10``: the classifier on the target images as they are and with
  Eq. 3 over 10 style codes (``attnlab tta``'s rows);
* ``target per code``: the mean over the 10 codes of the accuracy on one translation each;
* ``lost`` / ``gained``: target images right as they are and wrong after translation (N = 10), and
  the reverse;
* ``source raw`` / ``source per code`` / ``source N=10``: the same classifier on source images, as
  they are and translated into the source style: what translation alone costs on images whose
  style is already the classifier's (its round-trip error);
* ``raw+N=10``: the softmax of the image itself averaged with the 10 translations' (not the
  thesis's Eq. 3; what keeping the original in the ensemble would give).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from attnlab.commands.tta import SOURCE, TARGET, held_out_domains, load_classifier, load_translator
from attnlab.errors import InputError
from attnlab.models.gan.stargan2 import StarGAN2

CODES = 10
COLUMNS = [
    "target raw",
    "target per code",
    "target N=10",
    "lost",
    "gained",
    "source raw",
    "source per code",
    "source N=10",
    "raw+N=10",
]


@torch.no_grad()
def probabilities(
    classifier: nn.Module, translator: StarGAN2, images: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """(1 + N, B, classes): the softmax of the images as they are, then of each code's translation."""
    out = [classifier(images).logits.softmax(-1)]
    source = torch.full((len(images),), SOURCE, dtype=torch.int64)
    for code in z:
        fake = translator.translate(images, source, code.expand(len(images), -1)).clamp(-1, 1)
        out.append(classifier(fake).logits.softmax(-1))
    return torch.stack(out)


def percent(hits: torch.Tensor) -> float:
    return 100 * hits.float().mean().item()


def scores(p: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Per image: right as it is, right with Eq. 3 over the codes; and the per-code accuracy %."""
    raw = p[0].argmax(-1) == labels
    ensemble = p[1:].mean(0).argmax(-1) == labels
    return raw, percent(p[1:].argmax(-1) == labels), ensemble


def diagnose(runs: Path, classifier_name: str, translator_name: str, seed: int) -> list[float]:
    translator, spec = load_translator(runs / f"{translator_name}-s{seed}")
    domains, num_classes = held_out_domains(spec)
    classifier = load_classifier(runs / f"{classifier_name}-s{seed}", num_classes)
    z = torch.randn(CODES, translator.config.latent_dim, generator=torch.Generator().manual_seed(0))
    images, labels = domains[TARGET]
    p = probabilities(classifier, translator, images, z)  # (1 + N, B, classes)
    raw, per_code, ensemble = scores(p, labels)
    with_raw = percent(p.mean(0).argmax(-1) == labels)
    target = [percent(raw), per_code, percent(ensemble), percent(raw & ~ensemble), percent(~raw & ensemble)]
    images, labels = domains[SOURCE]
    raw, per_code, ensemble = scores(probabilities(classifier, translator, images, z), labels)
    return [*target, percent(raw), per_code, percent(ensemble), with_raw]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--translator", default="stargan2_ca")
    parser.add_argument("--classifiers", nargs="+", default=["cnn5", "resnet20"])
    args = parser.parse_args()
    print("| classifier | seed | " + " | ".join(COLUMNS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for name in args.classifiers:
        for seed in args.seeds:
            try:
                row = diagnose(args.runs, name, args.translator, seed)
            except InputError as error:
                raise SystemExit(f"tta_diagnose: {error}") from None
            print(f"| {name} | {seed} | " + " | ".join(f"{v:.1f}" for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
