"""A bare Slot Attention auto-encoder on single VMDS frames: the reference point for SFA's
slot-attention extractor (docs/object_centric.md, "What makes slots separate on a CPU").

Slot Attention's object-discovery model (Locatello et al. 2020) at CPU size, built from
attnlab's layers: a CNN (``--kernel``, ``--enc-layers`` of ``--chans``), a learned
position embedding of the 4-d grid (y, x, 1-y, 1-x) added, LayerNorm and a 2-layer MLP;
:class:`~attnlab.layers.slot_attention.SlotAttention`; a spatial broadcast decoder
(:class:`~attnlab.layers.broadcast_decoder.BroadcastDecoder`) per slot, masks softmaxed over
slots, MSE of the mixed image. Adam, linear warm-up, cosine decay, gradient clip 1.

It prints FG-ARI of the 256 test frames (128 two-frame clips) every ``--eval-every`` steps,
of the decoder's masks and of the last iteration's attention (each pixel's share per slot),
and, at the end, where the foreground pixels go (per number of sprites; the share won by
the background slot; each object's share in its majority slot), and writes a picture of
input, reconstruction and each slot (mask * rgb over grey) with ``--picture``.

Levers (docs/object_centric.md, session of 2026-12-03 (5)): ``--attn-masks 1`` mixes the slots
with the last iteration's attention instead of the decoder's masks; ``--mixture-after N``
trains with the per-pixel Gaussian mixture (``--sigma``; ``--per-channel 1``: one mixture per
colour channel, as ViMON's code) from step N + 1; ``--pos-keys 0`` keeps the positions out of
the keys; ``--loss-scale`` multiplies the MSE.

    OMP_NUM_THREADS=1 python scripts/slot_probe.py --init gaussian --picture probe.png
"""

from __future__ import annotations

import argparse
import math
import time

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.data.sprites import VMDSData
from attnlab.explain import capture
from attnlab.layers.broadcast_decoder import BroadcastDecoder
from attnlab.layers.slot_attention import SlotAttention
from attnlab.metrics.segmentation import fg_ari


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32, help="frames per step (two per clip)")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument(
        "--init",
        choices=["gaussian", "learned", "bilevel"],
        default="gaussian",
        help="bilevel: learned, with BO-QSA's straight-through gradient",
    )
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--enc-layers", type=int, default=4)
    p.add_argument("--chans", type=int, default=32)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dec-layers", type=int, default=3)
    p.add_argument("--dec-chans", type=int, default=32)
    p.add_argument("--dec-kernel", type=int, default=3, help="1: a per-pixel MLP of (slot, coordinates)")
    p.add_argument("--dec-fourier", type=int, default=0, help="Fourier bands of the decoder's coordinates")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--attn-scale", type=float, default=1.0, help="multiplies the attention logits")
    p.add_argument(
        "--loss-scale", type=float, default=1.0, help="multiplies the MSE (Adam's epsilon is absolute)"
    )
    p.add_argument(
        "--mixture-after",
        type=int,
        default=0,
        help="from this step on (0: never), the per-pixel mixture likelihood instead of the MSE",
    )
    p.add_argument("--sigma", type=float, default=0.1, help="the mixture components' standard deviation")
    p.add_argument(
        "--per-channel",
        type=int,
        default=0,
        help="1: one mixture per colour channel (ViMON)",
    )
    p.add_argument(
        "--attn-masks", type=int, default=0, help="1: mix the slots with the last iteration's attention"
    )
    p.add_argument(
        "--pos-keys",
        type=int,
        default=1,
        help="0: the keys see only content (position in the values alone)",
    )
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--variant", default="standard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--picture", default="")
    a = p.parse_args()
    if not a.pos_keys and a.init != "bilevel":
        p.error("--pos-keys 0 runs BO-QSA's iterations by hand: it needs --init bilevel")
    if a.steps < 1 or a.batch < 2 or a.warmup < 1:
        p.error("--steps and --warmup must be >= 1 and --batch >= 2")
    return a


class Encoder(nn.Module):
    """Frames (B, 3, S, S) -> tokens (B, S*S, dim), as Slot Attention's encoder."""

    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = 3
        for _ in range(a.enc_layers):
            layers += [nn.Conv2d(chans, a.chans, a.kernel, 1, a.kernel // 2), nn.ReLU()]
            chans = a.chans
        self.convs = nn.Sequential(*layers)
        self.pos = nn.Linear(4, a.chans)
        ys, xs = torch.meshgrid(torch.linspace(0, 1, a.size), torch.linspace(0, 1, a.size), indexing="ij")
        self.register_buffer("grid", torch.stack([ys, xs, 1 - ys, 1 - xs], -1).view(-1, 4))  # (S*S, 4)
        self.norm = nn.LayerNorm(a.chans)
        self.mlp = nn.Sequential(nn.Linear(a.chans, a.dim), nn.ReLU(), nn.Linear(a.dim, a.dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens with position and (for keys without position) tokens of the content alone."""
        content = self.convs(x).flatten(2).transpose(1, 2)  # (B, S*S, chans)
        return self.mlp(self.norm(content + self.pos(self.grid))), self.mlp(self.norm(content))


class AutoEncoder(nn.Module):
    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__()
        self.a = a
        self.encoder = Encoder(a)
        self.slot_attention = SlotAttention(
            a.dim, num_slots=a.slots, num_iterations=a.iters, bilevel=a.init == "bilevel"
        )
        self.slot_attention.scale *= a.attn_scale  # sharper (> 1) or softer competition
        # drawn whatever --init says, so that the other weights' initialisation does not depend on it
        self.queries = nn.Parameter(torch.randn(1, a.slots, a.dim))
        self.decoder = BroadcastDecoder(
            a.dim,
            out_chans=4,
            image_size=a.size,
            channels=a.dec_chans,
            num_layers=a.dec_layers,
            kernel_size=a.dec_kernel,
            fourier_bands=a.dec_fourier,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames (B, 3, S, S) -> reconstruction (B, 3, S, S), masks (B, K, S, S), rgb (B, K, 3, S, S)."""
        B, K, S = x.shape[0], self.a.slots, self.a.size
        init = self.queries.expand(B, -1, -1).contiguous() if self.a.init != "gaussian" else None
        tokens, content = self.encoder(x)
        if self.a.pos_keys:
            slots, attention = self.slot_attention.with_attention(
                tokens, slots=init
            )  # (B, K, dim), (B, K, N)
        else:
            assert init is not None  # parse() asks for --init bilevel here
            slots, attention = split_attention(self.slot_attention, content, tokens, init)
        out = self.decoder(slots.flatten(0, 1)).view(B, K, 4, S, S)
        masks = attention.view(B, K, S, S) if self.a.attn_masks else out[:, :, 3].softmax(dim=1)
        rgb = out[:, :, :3]
        return (masks[:, :, None] * rgb).sum(1), masks, rgb


def mixture_nll(
    x: torch.Tensor, masks: torch.Tensor, rgb: torch.Tensor, sigma: float, per_channel: bool
) -> torch.Tensor:
    """Mean over pixels of -log sum_k m_k N(x; rgb_k, sigma^2 I) (the constant dropped), or with
    ``per_channel`` the sum over channels of each channel's mixture; x (B, 3, S, S), masks
    (B, K, S, S), rgb (B, K, 3, S, S)."""
    log_n = -0.5 * ((x[:, None] - rgb) / sigma).pow(2)  # (B, K, 3, S, S)
    log_m = masks.clamp_min(1e-12).log()[:, :, None]  # (B, K, 1, S, S)
    if per_channel:
        return -torch.logsumexp(log_m + log_n, dim=1).sum(1).mean()
    return -torch.logsumexp(log_m + log_n.sum(2, keepdim=True), dim=1).mean()


def split_attention(
    sa: SlotAttention, keys: torch.Tensor, values: torch.Tensor, init: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot attention whose keys come from ``keys`` and values from ``values`` (B, N, D) each."""
    k, v = sa.k_proj(sa.norm_inputs(keys)), sa.v_proj(sa.norm_inputs(values))
    slots = init
    with torch.no_grad():
        for _ in range(sa.num_iterations - 1):
            slots = sa._step(slots, k, v, None, None)[0]
    slots = slots.detach() + init - init.detach()
    return sa._step(slots, k, v, None, None)[:2]  # the slots (B, K, D) and the last attention (B, K, N)


def frames(
    dataset: VMDSData, split: str, start: int, clips: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(2 * clips) frames, their segmentations and each frame's number of sprites."""
    data = dataset.build(split)  # type: ignore[arg-type]
    samples = [data[start + i] for i in range(clips)]
    video = torch.stack([s["video"] for s in samples]).flatten(0, 1)  # (2*clips, 3, S, S)
    seg = torch.stack([s["segmentation"] for s in samples]).flatten(0, 1)  # (2*clips, S, S)
    count = torch.stack([s["num_objects"] for s in samples]).repeat_interleave(2)
    return video, seg, count


@torch.no_grad()
def masks_of(model: AutoEncoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's masks and the last iteration's attention (each input's share per slot),
    both (N, K, S, S)."""
    decoded, attended = [], []
    for i in range(0, len(x), 64):
        with capture(model, layers=["slot_attention"]) as rec:
            decoded.append(model(x[i : i + 64])[1])
        weights = rec["slot_attention"]  # (b, K, S*S)
        attended.append(weights.view(*weights.shape[:2], model.a.size, model.a.size))  # (b, K, S, S)
    return torch.cat(decoded), torch.cat(attended)


def pixel_shares(masks: torch.Tensor, seg: torch.Tensor) -> tuple[float, float]:
    """Masks (N, K, S, S) against labels (N, S, S), 0 the background: the share of foreground
    pixels won by each frame's background slot (the slot that wins most background pixels),
    and an object's mean share of its pixels in the slot that wins most of them."""
    labels = masks.argmax(1)  # (N, S, S)
    fg = seg > 0
    K = masks.shape[1]
    bg_slot = torch.stack(
        [torch.bincount(lab[~f], minlength=K).argmax() for lab, f in zip(labels, fg, strict=True)]
    )
    on_bg = ((labels == bg_slot[:, None, None]) & fg).sum() / fg.sum()
    shares = []
    for lab, s in zip(labels, seg, strict=True):
        for obj in s.unique()[1:]:  # 0 is the background
            votes = torch.bincount(lab[s == obj], minlength=K)
            shares.append((votes.max() / votes.sum()).item())
    return on_bg.item(), float(np.mean(shares))


def where_pixels_go(masks: torch.Tensor, seg: torch.Tensor, count: torch.Tensor) -> None:
    ari = fg_ari(masks, seg)
    for n in count.unique().tolist():
        print(
            f"  {n} sprite(s): FG-ARI {ari[count == n].nanmean():.3f} over {int((count == n).sum())} frames"
        )
    on_bg, majority = pixel_shares(masks, seg)
    print(f"  foreground pixels won by the background slot: {on_bg:.3f}")
    print(f"  mean share of an object's pixels in its majority slot: {majority:.3f}")


@torch.no_grad()
def picture(model: AutoEncoder, x: torch.Tensor, path: str) -> None:
    recon, masks, rgb = model(x)
    columns = [x, recon] + [
        masks[:, k, None] * rgb[:, k] + (1 - masks[:, k, None]) * 0.5 for k in range(masks.shape[1])
    ]
    rows = [torch.cat([c[i].clamp(0, 1) for c in columns], -1) for i in range(len(x))]
    grid = torch.cat(rows, -2).permute(1, 2, 0).numpy()  # (rows*S, cols*S, 3)
    iio.imwrite(path, (np.kron(grid, np.ones((4, 4, 1))) * 255).astype(np.uint8))


def main() -> None:
    a = parse()
    torch.manual_seed(a.seed)
    model = AutoEncoder(a)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    def lr_factor(step: int) -> float:
        return min(1.0, (step + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(step, a.steps) / a.steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    data = VMDSData(
        seed=a.seed,
        variant=a.variant,
        image_size=a.size,
        num_frames=2,
        max_objects=3,
        val_size=0,
        test_size=128,
    )
    test_x, test_seg, test_count = frames(data, "test", 0, 128)
    one_slot = torch.ones(len(test_seg), 1, a.size, a.size)  # the floor: everything in one slot
    print(f"floor: one slot for everything, test FG-ARI {fg_ari(one_slot, test_seg).nanmean():.3f}")
    clips_per_step = a.batch // 2
    start = time.time()
    for step in range(1, a.steps + 1):
        x, _, _ = frames(data, "train", (step - 1) * clips_per_step, clips_per_step)
        recon, masks, rgb = model(x)
        if a.mixture_after and step > a.mixture_after:
            loss = mixture_nll(x, masks, rgb, a.sigma, a.per_channel)
        else:
            loss = F.mse_loss(recon, x) * a.loss_scale
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % a.eval_every == 0 or step == a.steps:
            model.eval()
            decoded, attended = masks_of(model, test_x)
            model.train()
            ari, ari_attention = fg_ari(decoded, test_seg).nanmean(), fg_ari(attended, test_seg).nanmean()
            print(
                f"step {step} ({time.time() - start:.0f} s) loss {loss.item():.5f} "
                f"test FG-ARI {ari:.3f} (attention: {ari_attention:.3f})",
                flush=True,
            )
    model.eval()
    where_pixels_go(masks_of(model, test_x)[0], test_seg, test_count)
    if a.picture:
        picture(model, test_x[:16:2], a.picture)


if __name__ == "__main__":
    main()
