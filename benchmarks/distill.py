"""One two-teacher distillation step: frozen teachers under one no_grad, one captured layer, vs naive.

    python benchmarks/distill.py                      # CPU, batch 64
    python benchmarks/distill.py --device cuda --batch 512

The step is the thesis's student update with fixed teachers (output KD from both, attention KD
from the MIM teacher's most confident head, λ1 = 0.5, λ2 = 0, as the distill-fmnist recipe with
``attention_weight 1``): teachers of the pre-training presets' size (28 px grey, patch 4, dim 128,
depth 6, 4 heads; MAE-shaped stand-ins with random weights: the cost does not depend on them),
the ``vit-student-p4`` student, cross-entropy + L_KD + L_Attn, backward, AdamW.

Variants, interleaved:
* ``frozen``: both teachers (linear mode: frozen backbones) run under one ``torch.no_grad``; only
  the MIM teacher's last layer is captured, and only the student's last layer differentiably.
* ``naive``: the teachers' parameters require gradients and autograd records their forward (the
  outputs are detached only inside the loss), every layer of both teachers is captured, and every
  layer of the student differentiably.
The ratio is naive / frozen.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from attnlab.explain import capture
from attnlab.explain.capture import attention_layers
from attnlab.models.vit.classifier import VIT_STUDENT_P4, AdaptedViT, AdaptedViTConfig, ViTClassifier
from attnlab.models.vit.mae import MAE, MAEConfig
from attnlab.objectives.distill import DistillConfig, distill_loss
from benchmarks.harness import device_info, measure, report

TEACHER = MAEConfig(
    img_size=28, patch_size=4, in_chans=1, dim=128, depth=6, num_heads=4,
    decoder_dim=64, decoder_depth=1, decoder_num_heads=4,
)  # fmt: skip
CONFIG = DistillConfig(lambda1=0.5, lambda2=0.0, attention_weight=1.0)


def teachers(device: torch.device) -> tuple[list[AdaptedViT], list[AdaptedViT]]:
    """Two frozen-backbone teachers and the same two with every parameter trainable."""
    frozen, naive = [], []
    for seed in (1, 2):
        torch.manual_seed(seed)
        config = AdaptedViTConfig(mode="linear", probe_norm=False)
        teacher = AdaptedViT(config, pretrained=MAE(TEACHER)).to(device)
        trainable = AdaptedViT(AdaptedViTConfig(mode="finetune", probe_norm=False), pretrained=MAE(TEACHER))
        trainable.load_state_dict(teacher.state_dict())
        frozen.append(teacher.eval())
        naive.append(trainable.to(device).eval())
    return frozen, naive


def make_step(
    student: ViTClassifier,
    teacher_pair: list[AdaptedViT],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    naive: bool,
) -> Callable[[], None]:
    opt = torch.optim.AdamW(student.parameters(), lr=1e-4)
    s_layer = list(attention_layers(student))[-1]
    t_layer = list(attention_layers(teacher_pair[1]))[-1]

    def teacher_outputs() -> tuple[list[torch.Tensor], torch.Tensor]:
        logits = [teacher_pair[0](images).logits]
        layers = None if naive else [t_layer]
        with capture(teacher_pair[1], layers=layers) as rec:
            logits.append(teacher_pair[1](images).logits)
        return logits, rec[t_layer]

    def step() -> None:
        if naive:
            with capture(teacher_pair[0]):  # every layer recorded, nothing read
                t_logits, t_map = teacher_outputs()
        else:
            with torch.no_grad():
                t_logits, t_map = teacher_outputs()
        with capture(student, differentiable=True, layers=None if naive else [s_layer]) as rec:
            s_logits = student(images).logits
        loss = distill_loss(
            CONFIG,
            s_logits,
            (t_logits[0], t_logits[1]),
            student_attention=rec[s_layer],
            teacher_attention=(None, t_map),
        )
        total = F.cross_entropy(s_logits, labels) + loss.total()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distill.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    frozen, naive = teachers(device)
    torch.manual_seed(0)
    student = ViTClassifier(VIT_STUDENT_P4).to(device)
    images = torch.randn(args.batch, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)
    variants = {
        "frozen": make_step(student, frozen, images, labels, naive=False),
        "naive": make_step(copy.deepcopy(student), naive, images, labels, naive=True),
    }
    results = measure(
        f"2 teachers d128x6 + student d96x4, b{args.batch}",
        variants,
        baseline="frozen",
        device=device,
        repeats=args.repeats,
    )
    info = device_info(device) | {
        "batch": args.batch,
        "distill": "lambda1 0.5, lambda2 0, attention_weight 1",
    }
    report("Distillation step: frozen teachers under no_grad vs naive full capture", results, info, args.out)


if __name__ == "__main__":
    main()
