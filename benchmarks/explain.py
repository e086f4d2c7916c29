"""Explanation throughput and ABN's training overhead (issue 4).

    python -m benchmarks.explain                 # CPU
    python -m benchmarks.explain --device cuda
    python -m benchmarks.explain --chunk-sweep 64 1 2 4 8 16 --repeats 3   # the CPU chunk size

1. Grad-CAM on a ResNet-50 (ImageNet layout, 1000 classes), batch 64: ours on the
   batch (one forward and one backward per chunk of ``cam.CPU_CHUNK`` images on CPU,
   for the whole batch on a GPU) against a loop that explains one image at a time,
   the way the popular grad-cam package is usually called. Target: at least 5x
   throughput on CPU.
2. One training step (forward, L_att + L_per or cross-entropy, backward, SGD step)
   of ABN against its backbone alone, and of ST-ABN against its 3D ResNet: the
   attention branch's cost, as a ratio.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import torch
import torch.nn.functional as F

from attnlab.explain import cam, class_activation_maps
from attnlab.models import create_model
from benchmarks.harness import Result, device_info, measure, report


def gradcam_variants(device: torch.device, batch: int, size: int) -> dict[str, Callable[[], object]]:
    model = create_model("resnet50").to(device).eval()
    images = torch.randn(batch, 3, size, size, device=device)
    layer = "stages.3"  # the last stage: where Grad-CAM is usually taken

    def batched() -> object:
        return class_activation_maps(model, images, layer, method="gradcam").maps

    def batched_as_given() -> object:  # before inputs went NHWC: the layout change's effect alone
        with patch.object(cam, "_channels_last", lambda x: x):
            return batched()

    def per_image() -> object:
        return torch.cat(
            [class_activation_maps(model, x[None], layer, method="gradcam").maps for x in images]
        )

    def package_style() -> object:
        return hooked_full_backward(model, images, layer)

    return {
        "ours, batched": batched,
        "ours, batched, inputs as given (NCHW)": batched_as_given,
        "ours, per-image loop": per_image,
        "hooks + full backward, per image": package_style,
    }


def chunk_variants(
    device: torch.device, batch: int, size: int, chunks: list[int]
) -> dict[str, Callable[[], object]]:
    """Our batched Grad-CAM with ``cam.CPU_CHUNK`` set to each size: the sweep behind its value."""
    model = create_model("resnet50").to(device).eval()
    images = torch.randn(batch, 3, size, size, device=device)

    def with_chunk(chunk: int) -> Callable[[], object]:
        def run() -> object:
            with patch.object(cam, "CPU_CHUNK", chunk):
                return class_activation_maps(model, images, "stages.3", method="gradcam").maps

        return run

    return {f"chunks of {chunk}": with_chunk(chunk) for chunk in chunks}


def hooked_full_backward(model: torch.nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    """The usual grad-cam package pattern, one image at a time: hooks keep the layer's output
    and gradient, ``score.backward()`` runs through the whole network (parameters included)."""
    module = dict(model.named_modules())[layer]
    kept: dict[str, torch.Tensor] = {}

    def keep(_m: torch.nn.Module, _args: object, out: torch.Tensor) -> None:
        kept["acts"] = out
        out.register_hook(lambda g: kept.__setitem__("grads", g))

    handle = module.register_forward_hook(keep)
    maps = []
    try:
        for x in images:
            model.zero_grad(set_to_none=True)
            logits = model(x[None]).logits
            logits[0, logits[0].argmax()].backward()
            weights = kept["grads"].mean(dim=(2, 3), keepdim=True)  # (1, C, 1, 1)
            maps.append(torch.relu((weights * kept["acts"]).sum(1)).detach())
    finally:
        handle.remove()
    return torch.cat(maps)


def train_step(name: str, overrides: dict[str, object], shape: tuple[int, ...], device: torch.device):
    model = create_model(name, **overrides).to(device).train()
    x = torch.randn(*shape, device=device)
    y = torch.randint(int(overrides["num_classes"]), (shape[0],), device=device)  # type: ignore[call-overload]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> object:
        out = model(x)
        loss = F.cross_entropy(out.logits, y)
        if hasattr(out, "att_logits"):
            loss = loss + F.cross_entropy(out.att_logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return None

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only-gradcam", action="store_true", help="skip the training-step comparison")
    parser.add_argument(
        "--chunk-sweep", type=int, nargs="+", help="only time our Grad-CAM with these CPU chunk sizes"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/explain.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    results: list[Result] = []
    case = f"Grad-CAM resnet50 B={args.batch} {args.size}px"
    if args.chunk_sweep:
        sweep = chunk_variants(device, args.batch, args.size, args.chunk_sweep)
        baseline = f"chunks of {args.chunk_sweep[0]}"
        results = measure(case, sweep, baseline=baseline, device=device, repeats=args.repeats, warmup=1)
        report("Grad-CAM: CPU chunk sizes", results, device_info(device), args.out)
        return
    results += measure(
        case,
        gradcam_variants(device, args.batch, args.size),
        baseline="ours, batched",
        device=device,
        repeats=args.repeats,
        warmup=1,
    )
    if args.only_gradcam:
        report("Explanations", results, device_info(device), args.out)
        return
    cifar = {"in_chans": 1, "num_classes": 10}
    steps = {
        "resnet20 (projection)": train_step(
            "resnet20-cifar", cifar | {"shortcut": "projection"}, (128, 1, 28, 28), device
        ),
        "abn-resnet20": train_step("abn-resnet20-cifar", cifar, (128, 1, 28, 28), device),
    }
    results += measure(
        "train step, B=128 28x28",
        steps,
        baseline="resnet20 (projection)",
        device=device,
        repeats=args.repeats * 3,
    )
    video = {"num_classes": 9}
    steps = {
        "r3d-tiny": train_step("r3d-tiny", video, (16, 3, 16, 48, 48), device),
        "st-abn-r3d-tiny": train_step("st-abn-r3d-tiny", video, (16, 3, 16, 48, 48), device),
    }
    results += measure(
        "train step, B=16 16x48x48", steps, baseline="r3d-tiny", device=device, repeats=args.repeats * 3
    )
    report("Explanations and ABN overhead", results, device_info(device), args.out)


if __name__ == "__main__":
    main()
