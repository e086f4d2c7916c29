"""docs/gans.md's check of the EMA generators' BatchNorm statistics on a finished EMA run.

    python scripts/gan_ema_statistics.py RUN_DIR [--cache runs/_cache]

Scores (IS-like, FID-like; the run's cached domain classifier, 2,000 codes per generator) of the
online generators, of the averaged generators with the online generators' BatchNorm statistics
copied into them, and of the averaged generators with standing statistics (what the task uses).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file
from torch import nn

from attnlab.metrics.gan_scores import FIDLike, inception_like_score
from attnlab.models import create_model
from attnlab.models.gan.domain_classifier import DomainClassifier, DomainClassifierConfig
from attnlab.train.gan_classifier import cache_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("runs/_cache"))
    args = parser.parse_args()
    spec = yaml.safe_load((args.run / "config.yaml").read_text())
    overrides = {k: v for k, v in spec["model"].items() if k != "name"}
    model = create_model(spec["model"]["name"], **overrides)
    model.load_state_dict(load_file(args.run / "model.safetensors"))
    model.eval()
    size = model.config.image_size
    tensors = load_file(cache_file(args.cache, size, spec["task"].get("classifier_steps", 1500), 0))
    classifier = DomainClassifier(DomainClassifierConfig())
    classifier.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    classifier.eval()
    fid = FIDLike(tensors["ref.features"])
    z = torch.randn(2000, model.config.latent_dim, generator=torch.Generator().manual_seed(1))

    def score(generator: nn.Module) -> str:
        with torch.no_grad():
            images = torch.cat([generator(part)[0] for part in z.split(500)])  # (N, k, C, H, W)
            out = classifier(images.flatten(0, 1))
        return f"IS-like {inception_like_score(out.logits)[0]:.2f}, FID-like {fid(out.features):.1f}"

    copied = copy.deepcopy(model.generator_ema)
    for b_copy, b in zip(copied.buffers(), model.generator.buffers(), strict=True):
        b_copy.copy_(b)
    model.standing_statistics()
    print(f"online generators: {score(model.generator)}")
    print(f"average, online statistics copied: {score(copied.eval())}")
    print(f"average, standing statistics: {score(model.generator_ema)}")


if __name__ == "__main__":
    main()
