"""GAN training step with k = 1, 2, 3 generators: one grouped call vs a loop over generators.

    python benchmarks/gans.py                  # CPU, 32x32, widths 32, batch 64
    python benchmarks/gans.py --device cuda --width 64 --size 64

One step = the discriminator's MAD-GAN step on real + generated images, then the generators'
step towards "real" (Adam both), as :class:`attnlab.train.gan_images.GANImagesTask` does it.
Variants are interleaved in one process; medians, ratios to the grouped variant, peak memory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from attnlab.models import create_model
from attnlab.objectives import gan_madgan
from attnlab.objectives.terms import weighted_sum
from benchmarks.harness import Result, device_info, measure, report


def train_step(batched: bool, k: int, args: argparse.Namespace, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    model = create_model(
        "madgan-k3-32", num_generators=k, image_size=args.size, g_width=args.width, d_width=args.width,
        spectral_norm=True, batched=batched,
    ).to(device)  # fmt: skip
    g_opt = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(args.batch, 1, args.size, args.size, device=device) * 2 - 1

    def step() -> object:
        z = torch.randn(args.batch, model.config.latent_dim, device=device)
        with torch.no_grad():
            fake, _ = model.generator(z)  # (B, k, C, H, W)
        fake_logits = model.discriminator(fake.flatten(0, 1)).unflatten(0, fake.shape[:2])
        d_loss = weighted_sum(gan_madgan.discriminator_terms(model.discriminator(real), fake_logits))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = weighted_sum(gan_madgan.generator_terms(model(z).logits))
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        return None

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gans.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    results: list[Result] = []
    for k in args.ks:
        variants = {"grouped": train_step(True, k, args, device), "loop": train_step(False, k, args, device)}
        results += measure(
            f"k={k} train step", variants, baseline="grouped", device=device, repeats=args.repeats
        )
    title = f"GAN train step (D then G), {args.size}x{args.size}, widths {args.width}, batch {args.batch}"
    report(title, results, device_info(device), args.out)


if __name__ == "__main__":
    main()
