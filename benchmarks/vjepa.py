"""V-JEPA pre-training step: throughput, peak memory, and (GPU) model FLOPs utilisation.

    python benchmarks/vjepa.py                                   # CPU: vjepa-tiny-mfmnist, batch 8
    python benchmarks/vjepa.py --device cuda --model vjepa-vitl16 --batch 16 --dtype bf16
    python benchmarks/vjepa.py --device cuda --model vjepa-vitl16 --batch 64 --dtype bf16 --no-eager --compile

One step = masks (short- and long-range multi-block), target encoder on the whole clip, context
encoder and predictor per mask type, L1 loss, backward, AdamW, EMA update (as the vjepa task).
Variants, interleaved: ``fused`` (every attention through one SDPA call) and ``eager`` (the
same layers computing softmax(QK^T/sqrt(d)) V from materialised weights, inside
``attnlab.explain.capture(differentiable=True)``); the ratio is eager / fused.

FLOPs are counted from the shapes of the step (2 per multiply-add): linear layers and the two
attention matmuls of every block, the tubelet embedding; backward = 2 x forward for the trained
parts; the target encoder runs forward only. MFU = achieved / ``--peak-tflops`` (H100/H200 SXM
bf16 dense: 989). ``--compile`` adds the fused step with the encoder, the predictor and the target
encoder each under ``torch.compile`` (``compiled``, timed after the warm-up steps that compile it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from attnlab.explain import capture
from attnlab.models import create_model
from attnlab.models.vjepa.encoder import check_clips
from attnlab.models.vjepa.vjepa import VJEPA
from attnlab.objectives.vjepa import jepa_terms
from attnlab.objectives.vjepa_masks import MULTIBLOCK, sample_masks
from attnlab.objectives.vjepa_schedules import decay_groups, ema_update
from benchmarks.harness import device_info, measure, report


def block_flops(tokens: int, dim: int, mlp_ratio: float) -> float:
    """Forward FLOPs of one pre-norm block on ``tokens`` tokens: qkv + proj + MLP, QK^T and AV."""
    linear = 2 * tokens * dim * (3 * dim + dim + 2 * int(dim * mlp_ratio))
    return linear + 2 * 2 * tokens * tokens * dim


def step_flops(model: VJEPA, clips: torch.Tensor, enc: list[torch.Tensor], pred: list[torch.Tensor]) -> float:
    c = model.config
    n = clips.shape[0]
    grid = check_clips(clips, c.encoder())
    tokens = grid[0] * grid[1] * grid[2]
    embed = 2 * tokens * c.dim * c.in_chans * c.tubelet_size * c.patch_size**2
    target = n * (embed + c.depth * block_flops(tokens, c.dim, c.mlp_ratio))  # forward only
    trained = 0.0
    for e, p in zip(enc, pred, strict=True):
        nc, nt = e.shape[1], p.shape[1]
        context = embed + c.depth * block_flops(nc, c.dim, c.mlp_ratio)
        predictor = 2 * nc * c.dim * c.pred_dim + 2 * nt * c.pred_dim * c.dim
        predictor += c.pred_depth * block_flops(nc + nt, c.pred_dim, c.mlp_ratio)
        trained += n * (context + predictor)
    return target + 3 * trained


def make_step(
    model: VJEPA, clips: torch.Tensor, eager: bool, dtype: torch.dtype | None
) -> tuple[Callable[[], object], float]:
    optimizer = torch.optim.AdamW(decay_groups(model.encoder, model.predictor), lr=1e-4)
    grid = check_clips(clips, model.config.encoder())
    torch.manual_seed(0)
    enc, pred = sample_masks(grid, MULTIBLOCK, clips.shape[0], step=0)
    enc, pred = [m.to(clips.device) for m in enc], [m.to(clips.device) for m in pred]

    def step() -> object:
        with torch.autocast(clips.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if eager:
                with capture(model, differentiable=True):
                    out = model(clips, enc, pred)
            else:
                out = model(clips, enc, pred)
            loss = jepa_terms(out)["jepa"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema_update(model.target_encoder, model.encoder, 0.998)
        return None

    return step, step_flops(model, clips, enc, pred)


def compiled_copy(model: VJEPA) -> VJEPA:
    """A copy of ``model`` whose encoder, predictor and target encoder run under ``torch.compile``
    (the masks of the benchmark are fixed, so each compiles once)."""
    twin = VJEPA(model.config).to(next(model.parameters()).device)
    twin.load_state_dict(model.state_dict())
    for part in (twin.encoder, twin.predictor, twin.target_encoder):
        part.compile()
    return twin


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="vjepa-tiny-mfmnist")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--no-eager", action="store_true", help="time the fused step only (large models)")
    parser.add_argument("--compile", action="store_true", help="add the step under torch.compile")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/vjepa.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else None
    model = create_model(args.model).to(device)
    assert isinstance(model, VJEPA)
    c = model.config
    clips = torch.randn(args.batch, c.in_chans, c.num_frames, c.img_size, c.img_size, device=device)
    fused, flops = make_step(model, clips, eager=False, dtype=dtype)
    variants = {"fused": fused}
    if not args.no_eager:
        variants["eager"] = make_step(model, clips, eager=True, dtype=dtype)[0]
    if args.compile:
        variants["compiled"] = make_step(compiled_copy(model), clips, eager=False, dtype=dtype)[0]
    results = measure(f"{args.model} b{args.batch} {args.dtype}", variants, baseline="fused", device=device,
                      repeats=args.repeats, warmup=3 if args.compile else 2)  # fmt: skip
    info = device_info(device)
    seconds = results[0].median_ms / 1e3
    info |= {
        "clips_per_s": args.batch / seconds,
        "model_tflop_per_step": flops / 1e12,
        "achieved_tflops": flops / seconds / 1e12,
    }
    if device.type == "cuda":
        info["mfu"] = flops / seconds / 1e12 / args.peak_tflops
    report("V-JEPA pre-training step (fused vs eager attention)", results, info, args.out)


if __name__ == "__main__":
    main()
