"""What the token features of a V-JEPA run keep, beside a random encoder's (a diagnostic).

    PYTHONPATH=src python scripts/vjepa_features.py RUN_DIR [--clips 512] [--seed 0]

For the run's target encoder and a randomly initialised encoder of the same architecture,
on moving-fmnist test clips: the effective rank of the token features (exp of the entropy of
the normalised singular values; also of each token minus its clip's mean token, and of the clips'
mean tokens), the share of the targets' variance (the layer-normed features, as the loss sees
them) that the token's position explains (the variance of each position's mean over clips over
the total variance), the RMS over channels of each channel's mean over tokens (the
offset the tokens share) and the mean over channels of each channel's std over tokens (how much
they vary around it), and how well a ridge regression from one token's (standardised) feature
reads, on held-out clips, the token's time step, row and column, its mean pixel value and how
much of it the item covers (R^2). Prints one markdown row per encoder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from attnlab.catalog import DATAMODULES
from attnlab.data.moving_fmnist import ITEM, MovingItems
from attnlab.metrics.rank import effective_rank
from attnlab.models.vjepa.encoder import VideoViT
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model


def item_cover(data: MovingItems, index: int) -> np.ndarray:
    """(T, S, S) opacity of the item in clip ``index`` (the draws of ``MovingItems.__getitem__``)."""
    draw = data.draw(index)
    cover = np.zeros((data.frames, data.size, data.size))
    for t, (y, x) in enumerate(np.rint(draw.view_path).astype(int)):
        cover[t, y : y + ITEM, x : x + ITEM] = data.images[draw.pick] / 255.0
    return cover[::-1] if draw.motion % 2 else cover


def per_token(values: torch.Tensor, t: int, p: int) -> torch.Tensor:
    """(B, T, H, W) -> (B, N): the mean over each tubelet, tokens t-major then row then column."""
    B, T, H, W = values.shape
    x = values.reshape(B, T // t, t, H // p, p, W // p, p).mean(dim=(2, 4, 6))
    return x.reshape(B, -1)


def ridge_r2(x: torch.Tensor, y: torch.Tensor, lam: float = 1e-2) -> float:
    """R^2 on the second half of rows of a ridge fit on the first half (x (M, D), y (M,))."""
    half = len(x) // 2
    mu, sd = x[:half].mean(0), x[:half].std(0) + 1e-6
    xs = torch.cat([(x - mu) / sd, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    a, b = xs[:half], xs[half:]
    w = torch.linalg.solve(a.T @ a + lam * half * torch.eye(a.shape[1], dtype=x.dtype), a.T @ y[:half])
    resid = y[half:] - b @ w
    return float(1 - resid.var() / y[half:].var())


def position_share(feats: torch.Tensor) -> float:
    """Share of the variance of the layer-normed (M, N, D) features that the position explains."""
    targets = torch.nn.functional.layer_norm(feats, feats.shape[-1:])
    centred = targets - targets.mean(dim=(0, 1))
    return float(centred.mean(0).pow(2).mean() / centred.pow(2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = resolve(args.run / "config.yaml", [])
    model = build_model(spec.model_name, spec.model_config)
    model.load_state_dict(load_file(args.run / "model.safetensors"))
    data_args = spec.data_args | {"test_size": args.clips}
    data = DATAMODULES.get(spec.data_name or "").cls(seed=spec.seed, **data_args).build("test")
    c = model.config
    clips = torch.stack([data[i]["input"] for i in range(args.clips)])  # (M, 1, T, S, S)
    cover = torch.from_numpy(np.stack([item_cover(data, i) for i in range(args.clips)])).float()
    pixels = clips[:, 0] * 0.25 + 0.5  # back to [0, 1]
    t, p = c.tubelet_size, c.patch_size
    grid = (c.num_frames // t, c.img_size // p, c.img_size // p)
    tt, rr, cc = torch.meshgrid(*(torch.arange(g).float() for g in grid), indexing="ij")
    targets = {
        "time": tt.reshape(1, -1).expand(args.clips, -1),
        "row": rr.reshape(1, -1).expand(args.clips, -1),
        "column": cc.reshape(1, -1).expand(args.clips, -1),
        "pixel mean": per_token(pixels, t, p),
        "item cover": per_token(cover, t, p),
    }
    torch.manual_seed(args.seed)
    encoders = {"target encoder": model.target_encoder, "random": VideoViT(c.encoder())}
    head = ["effective rank", "within clips", "of clip means", "position share"]
    head += ["channel offset", "channel std"]
    head += [f"R2 {k}" for k in targets]
    print(f"| encoder | {' | '.join(head)} |")
    print(f"| --- |{' --- |' * len(head)}")
    for name, encoder in encoders.items():
        with torch.no_grad():
            feats = encoder.eval()(clips).double()  # (M, N, D)
        flat = feats.reshape(-1, feats.shape[-1])  # (M N, D), clips in order: halves split clips
        r2 = [ridge_r2(flat, v.reshape(-1).double()) for v in targets.values()]
        # how far the tokens vary around their per-channel offset (what a probe's step size sees)
        offset, spread = flat.mean(0).pow(2).mean().sqrt(), flat.std(0).mean()
        # the spread split: each token around its clip's mean token, and the clips' mean tokens
        within = (feats - feats.mean(1, keepdim=True)).reshape(-1, feats.shape[-1])
        ranks = [effective_rank(flat), effective_rank(within), effective_rank(feats.mean(1))]
        stats = " | ".join(f"{r:.1f}" for r in ranks) + f" | {position_share(feats):.2f}"
        stats += f" | {offset:.3f} | {spread:.3f}"
        print(f"| {name} | {stats} | {' | '.join(f'{v:.3f}' for v in r2)} |")


if __name__ == "__main__":
    main()
