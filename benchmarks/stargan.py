"""StarGAN v2: one training batch (the reference's four updates), plain and class-aware; and
test-time augmentation with N style codes, batched into one call against a loop over N.

    python benchmarks/stargan.py                        # CPU: stargan2-32, batch 8, N = 10, 100 images
    python benchmarks/stargan.py --device cuda --batch 32 --images 1000

Train step = D on latent-guided fakes, D on reference-guided fakes, G+F+E (+C) on the latent-guided
generator loss, G on the reference-guided one (Adam each), as :class:`attnlab.train.stargan2.StarGAN2Task`
runs them. TTA = Eq. 3 of seed 001 for ``--images`` target images: translate each with N codes
through the EMA mapping network and generator, classify with the 5-layer CNN, average the softmax;
both variants make calls of ``--images`` translations (batched: images / N images with N codes each,
loop: all images with one code), since one call of all images x N translations was measured 1.8x
slower than the loop on one CPU core (and 7x the memory): bigger calls only pay on a GPU.
Variants interleaved in one process; medians, ratios, peak memory; images/s printed for TTA.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from attnlab.commands.tta import translated_probabilities
from attnlab.models import create_model
from attnlab.models.gan.stargan2 import StarGAN2
from attnlab.objectives.stargan2 import (
    StarGAN2LossConfig,
    Translation,
    class_aware_terms,
    discriminator_loss_terms,
    generator_loss_terms,
)
from attnlab.objectives.terms import weighted_sum
from benchmarks.harness import Result, device_info, measure, report


def train_step(preset: str, batch: int, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    model = create_model(preset).to(device)
    assert isinstance(model, StarGAN2)
    parts = ["discriminator", "generator", "mapping_network", "style_encoder"]
    parts += ["classifier"] if model.classifier is not None else []
    opts = {p: torch.optim.Adam(getattr(model, p).parameters(), 1e-4, betas=(0.0, 0.99)) for p in parts}
    g_latent = [p for p in parts if p != "discriminator"]
    phases = [
        ("d", False, ["discriminator"]),
        ("d", True, ["discriminator"]),
        ("g", False, g_latent),
        ("g", True, ["generator"]),
    ]
    config, size = StarGAN2LossConfig(), model.config.img_size
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    refs = torch.rand(2, batch, 3, size, size, device=device) * 2 - 1
    y_org, y_trg = torch.arange(batch, device=device) % 2, (torch.arange(batch, device=device) + 1) % 2
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> object:
        z = torch.randn(2, batch, model.config.latent_dim, device=device)
        for kind, by_reference, owners in phases:
            sources = refs if by_reference else z
            t = Translation(x, y_org, y_trg, sources[0], sources[1], by_reference)
            if kind == "d":
                terms = discriminator_loss_terms(model, t, config)
            else:
                terms, fake = generator_loss_terms(model, t, config, step=0)
                if model.classifier is not None and not by_reference:
                    terms |= class_aware_terms(model, x, fake, labels, y_org == 0, config)
            for p in owners:
                opts[p].zero_grad()
            weighted_sum(terms).backward()
            for p in owners:
                opts[p].step()
        model.update_ema(0.999)
        return None

    return step


def tta_call(batched: bool, n: int, images: int, device: torch.device) -> Callable[[], object]:
    torch.manual_seed(0)
    translator = create_model("stargan2-32").to(device).eval()
    classifier = create_model("cnn5-digits").to(device).eval()
    x = torch.rand(images, 3, 32, 32, device=device) * 2 - 1
    z = torch.randn(n, translator.config.latent_dim, device=device)
    source = torch.zeros(images, dtype=torch.int64, device=device)

    @torch.no_grad()
    def run() -> object:
        if (
            batched
        ):  # calls of the loop's size: ``images`` translations, images // n of them with n codes each
            chunk = max(1, images // n)
            return torch.cat(
                [translated_probabilities(classifier, translator, part, z) for part in x.split(chunk)]
            )
        total = torch.zeros(images, 10, device=device)
        for k in range(n):
            fake = translator.translate(x, source, z[k].expand(images, -1))
            total += classifier(fake.clamp(-1, 1)).logits.softmax(-1)
        return total / n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stargan.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    results: list[Result] = []
    steps = {
        "stargan2-32": train_step("stargan2-32", args.batch, device),
        "class-aware": train_step("stargan2_class_aware-32", args.batch, device),
    }
    results += measure(
        f"train batch of {args.batch} (4 updates)",
        steps,
        baseline="stargan2-32",
        device=device,
        repeats=args.repeats,
    )
    calls = {
        "batched": tta_call(True, args.n, args.images, device),
        "loop": tta_call(False, args.n, args.images, device),
    }
    tta = measure(
        f"TTA N={args.n}, {args.images} images",
        calls,
        baseline="batched",
        device=device,
        repeats=args.repeats,
    )
    for r in tta:
        print(f"TTA {r.variant}: {args.images / (r.median_ms / 1000):.0f} images/s")
    results += tta
    report("StarGAN v2 training batch and test-time augmentation", results, device_info(device), args.out)


if __name__ == "__main__":
    main()
