"""ViMON batched over slots versus the reference's slot-by-slot loop: one training step.

    python -m benchmarks.vimon_loop                       # CPU, the seed's configuration
    python -m benchmarks.vimon_loop --batch 4 --repeats 5
    python -m benchmarks.vimon_loop --device cuda --bf16 --channels-last --compile

The reference (ecker-lab/object-centric-representation-benchmark, ``ocrb/vimon/networks/
model.py``) runs, for every frame and for every slot in turn, the attention U-Net, the
VAE encoder, the GRU, and the decoder twice (z, then z_pred), each on the B clips of the
batch. :func:`vimon_loop` does the same with the submodules of an attnlab
:class:`~attnlab.models.object_centric.vimon.ViMON` (the same parameters, nothing copied), so that it
returns the same :class:`~attnlab.models.outputs.ObjectCentricOutput` as ``model(video)`` (equal
up to float rounding in posterior-mean mode; ``tests/models/object_centric/test_vimon_loop.py``).

Our forward batches the encoder, GRU and decoder over the K slots of a frame; the
attention U-Net stays sequential over slots in both (each scope depends on the earlier
slots). Variants: ``batched`` (``model(video)``), ``loop`` (the reference's order with
our decoder), ``loop-tiled`` (the loop with the decoder computed as the reference does,
tiling z before the first convolution: :meth:`BroadcastDecoder.forward_tiled`).
One step = the forward on frames 1..T-1, ViMON's loss, backward and Adam, interleaved in
one process (``benchmarks.harness``), ratios to ``batched``.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

import torch

from attnlab.models import create_model
from attnlab.models._checks import check_video
from attnlab.models.object_centric._slot_vae import slot_latent
from attnlab.models.object_centric.vimon import ViMON, _Frame
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.object_centric import vimon_losses
from attnlab.train.model_options import to_channels_last
from benchmarks.harness import add_speed_flags, device_info, measure, random_video, report, speed_flags

VARIANTS = ("batched", "loop", "loop-tiled")
Forward = Callable[[torch.Tensor], ObjectCentricOutput]


def _slot(
    model: ViMON,
    frame: torch.Tensor,
    log_mask: torch.Tensor,
    hidden: torch.Tensor,
    decode: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encoder, GRU and decoder for one slot of B clips -> hidden, decoded (2, B, 4, H, W), latents."""
    c = model.config
    feature = model.encoder(torch.cat([frame, log_mask], dim=1))  # (B, 2D)
    hidden = model.gru(feature / c.gru_scale, hidden)  # (B, G)
    mu, logvar = model.posterior(hidden * c.gru_scale).chunk(2, dim=-1)  # (B, D) each
    z = slot_latent(mu, logvar, c, training=model.training)
    z_pred = model.transition(z)
    decoded = torch.stack([decode(z), decode(z_pred)])  # (2, B, 4, H, W): two calls, as the reference
    return hidden, decoded, torch.stack([mu, logvar, z, z_pred])  # latents (4, B, D)


def _frame(
    model: ViMON,
    frame: torch.Tensor,
    prev_log_masks: torch.Tensor,
    hidden: list[torch.Tensor],
    decode: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[_Frame, list[torch.Tensor]]:
    """One frame (B, 3, H, W), slot after slot: attention step, encoder, GRU, decoder."""
    num_slots = model.config.num_slots
    log_scope = torch.zeros_like(frame[:, :1])  # (B, 1, H, W): log s_1 = 0
    log_masks, decoded, latents, new_hidden = [], [], [], []
    for k in range(num_slots):
        if k < num_slots - 1:
            log_mask, log_scope = model.attention.step(frame, log_scope, prev_log_masks[:, k])  # (B, 1, H, W)
        else:
            log_mask = log_scope  # the last slot takes what is left
        h, dec, lat = _slot(model, frame, log_mask, hidden[k], decode)
        log_masks.append(log_mask)
        decoded.append(dec)
        latents.append(lat)
        new_hidden.append(h)
    step = _Frame(
        attn_log_masks=torch.stack(log_masks, dim=1),  # (B, K, 1, H, W)
        decoded=torch.stack(decoded, dim=2),  # (2, B, K, 4, H, W)
        latents=torch.stack(latents, dim=2),  # (4, B, K, D)
        hidden=torch.stack(new_hidden, dim=1).flatten(0, 1),  # (B*K, G), as the batched forward
    )
    return step, new_hidden


def vimon_loop(model: ViMON, video: torch.Tensor, *, tiled_decoder: bool = False) -> ObjectCentricOutput:
    """``model(video)`` computed frame by frame and slot by slot, in the reference's order.

    ``tiled_decoder``: decode as the reference does (tile z, then convolve) instead of
    through ``model.decoder``'s first-layer shortcut; the same function of the weights.
    """
    c = model.config
    check_video(video, c.image_size)
    B, T, _, H, W = video.shape
    decode = model.decoder.forward_tiled if tiled_decoder else model.decoder
    hidden = [video.new_zeros(B, c.gru_dim) for _ in range(c.num_slots)]  # one state per slot
    prev_log_masks = video.new_zeros(B, c.num_slots, 1, H, W)  # no prediction for frame 0
    steps = []
    for t in range(T):
        step, hidden = _frame(model, video[:, t], prev_log_masks, hidden, decode)
        prev_log_masks = step.decoded[1, :, :, 3:].log_softmax(dim=1)  # (B, K, 1, H, W)
        steps.append(step)
    return model._assemble(steps)


def training_step(
    forward: Forward,
    video: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    bf16: bool,
) -> Callable[[], None]:
    """Forward on frames 1..T-1, ViMON's loss (beta 1, gamma 2), backward, Adam."""

    def step() -> None:
        with torch.autocast(video.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = vimon_losses(forward(video[:, :-1]), video).total()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _forwards(model: ViMON, names: list[str], compile_: bool) -> dict[str, Forward]:
    """Each variant's forward on the one ``model``; ``compile_`` compiles each forward as a whole."""
    table: dict[str, Forward] = {
        "batched": model,
        "loop": functools.partial(vimon_loop, model),
        "loop-tiled": functools.partial(vimon_loop, model, tiled_decoder=True),
    }
    return {name: torch.compile(table[name]) if compile_ else table[name] for name in names}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=10, help="video frames; the model encodes T - 1")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64, help="a multiple of 32 (U-Net: 5 blocks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["batched", "loop"], choices=VARIANTS)
    add_speed_flags(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/vimon_loop.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("vimon", num_slots=args.slots, image_size=args.image_size).to(device).train()
    if args.channels_last:
        to_channels_last(model)
    video = random_video(args.batch, args.frames, args.image_size, device, channels_last=args.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forwards = _forwards(model, args.variants, args.compile)
    # Every variant trains the same model: the steps change the weights, never the cost.
    steps = {
        name: training_step(forward, video, optimizer, bf16=args.bf16) for name, forward in forwards.items()
    }
    flags = speed_flags(args)
    size = args.image_size
    case = f"train step B={args.batch} T={args.frames} K={args.slots} {size}x{size}"
    if flags:
        case += f" [{', '.join(flags)}]"
    baseline = "batched" if "batched" in steps else args.variants[0]
    results = measure(case, steps, baseline=baseline, device=device, repeats=args.repeats, warmup=args.warmup)
    paired = {r.variant: r.paired_ratio for r in results}
    info = device_info(device) | {"flags": flags, f"paired_ratio_to_{baseline}": paired}
    title = "ViMON: batched over slots vs the reference's slot loop, one training step"
    report(title, results, info, args.out)


if __name__ == "__main__":
    main()
