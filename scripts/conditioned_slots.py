"""Does knowing where the objects start make `sfa-clevrer_lite_small`'s slots take whole objects?

SAVi's conditional set-up (Kipf et al. 2022, arXiv:2111.12594) starts each slot from an MLP of a
cue about one object in the first frame. This probe does that with the recipe's model, loss,
optimiser and data sizes (read from the shipped recipe):
slot k starts from its learned query plus an MLP of (y, x, present, is-ground) for channel k of
the first frame's ground-truth masks (k = 0 the ground, k >= 1 the object with track id k; its
centre of mass in [0, 1], zeros where the object is not in view). The cues are ground truth, so
this is an upper bound on what a cue could give, not an encoder for the question-answering table.
``--cues off`` trains the same loop without them (the control).

It prints the test FG-ARI (100 clips of 3 frames, 32x32, as the recipe's test) every
``--eval-every`` steps.

    OMP_NUM_THREADS=1 python scripts/conditioned_slots.py --cues first_frame --seed 0
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
import yaml
from torch import nn

from attnlab.data.clevrer_lite_data import ClevrerLiteData
from attnlab.layers.slot_attention import VideoSlotAttention
from attnlab.metrics.segmentation import fg_ari
from attnlab.models import create_model
from attnlab.models.object_centric.sfa import SFA
from attnlab.objectives.terms import weighted_sum
from attnlab.recipes import recipe_path
from attnlab.runs.config import OptimConfig
from attnlab.train.object_centric import ObjectCentricTask
from attnlab.train.optim import build_optimizer, build_scheduler

CUE_DIM = 4  # y, x, present, is-ground
RECIPE = "sfa-clevrer_lite_small"


def recipe() -> dict[str, Any]:
    """The shipped recipe this probe trains: its model, task, optimiser and data sizes."""
    return yaml.safe_load(recipe_path(RECIPE).read_text())


def first_frame_cues(masks: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks (B, T, 1 + K, S, S) -> cues (B, 1 + K, 4): each channel's centre of mass
    (y, x) in [0, 1] in the first frame, whether it is in view, whether it is the ground."""
    first = masks[:, 0].float()  # (B, 1+K, S, S)
    size = first.shape[-1]
    centres = (torch.arange(size, dtype=first.dtype) + 0.5) / size  # (S,)
    area = first.sum((-1, -2))  # (B, 1+K)
    y = (first.sum(-1) * centres).sum(-1) / area.clamp_min(1)  # (B, 1+K)
    x = (first.sum(-2) * centres).sum(-1) / area.clamp_min(1)
    present = (area > 0).to(first.dtype)
    ground = torch.zeros_like(present)
    ground[:, 0] = 1
    return torch.stack([y * present, x * present, present, ground], dim=-1)  # (B, 1+K, 4)


class CuedSlots(VideoSlotAttention):
    """The recipe's slot attention whose first slots are the learned queries plus an MLP of the
    cues that the training loop sets on ``self.cues`` (B, K, 4) before each forward (a probe's
    shortcut: the model's forward takes the video alone)."""

    def __init__(self, dim: int, num_slots: int) -> None:
        super().__init__(dim, num_slots=num_slots, num_iterations=3, bilevel=True)
        self.cue_mlp = nn.Sequential(nn.Linear(CUE_DIM, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.cues: torch.Tensor | None = None

    def initial_slots(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        if self.cues is None or self.cues.shape[0] != batch:
            raise RuntimeError("set cues for this batch before the forward")
        return (self.queries + self.cue_mlp(self.cues)).to(like.dtype)  # (B, K, D)


def test_fg_ari(model: SFA, clips: torch.utils.data.Dataset, cued: bool) -> float:
    model.eval()
    found = []
    loader = torch.utils.data.DataLoader(clips, batch_size=32)
    with torch.no_grad():
        for batch in loader:
            if cued:
                model.extractor.cues = first_frame_cues(batch["masks"])
            out = model(batch["video"])
            found.append(fg_ari(out.masks[:, :, :, 0], batch["segmentation"]).flatten())
    model.train()
    return torch.nanmean(torch.cat(found)).item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cues", choices=["first_frame", "off"], default="first_frame")
    p.add_argument("--steps", type=int, default=1250)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    spec = recipe()
    data = ClevrerLiteData(
        seed=args.seed,
        clip_size=spec["data"]["clip_size"],
        num_frames=spec["data"]["num_frames"],
        batch_size=spec["data"]["batch_size"],
    )
    test = data.build("test")
    model = create_model("sfa", **{k: v for k, v in spec["model"].items() if k != "name"})
    cued = args.cues == "first_frame"
    if cued:
        model.extractor = CuedSlots(model.config.dim, model.config.num_slots)
    task = ObjectCentricTask(
        model=model, optim=OptimConfig(), **{k: v for k, v in spec["task"].items() if k != "name"}
    )
    optim = OptimConfig(**spec["optim"])
    opt = build_optimizer(model, optim)
    schedule = build_scheduler(opt, optim, args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    train = torch.utils.data.DataLoader(
        data.build("train"), batch_size=data.batch_size, shuffle=True, drop_last=True, generator=generator
    )
    print(f"step 0 test FG-ARI {test_fg_ari(model, test, cued):.3f}", flush=True)
    step, start = 0, time.time()
    while step < args.steps:
        for batch in train:
            if cued:
                model.extractor.cues = first_frame_cues(batch["masks"])
            video = batch["video"]
            loss = weighted_sum(task._terms(model(video[:, :-1]), video))  # frame T is a target only
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["trainer"]["gradient_clip_val"])
            opt.step()
            schedule.step()
            step += 1
            if step % args.eval_every == 0 or step == args.steps:
                ari = test_fg_ari(model, test, cued)
                print(f"step {step} ({time.time() - start:.0f} s) test FG-ARI {ari:.3f}", flush=True)
            if step == args.steps:
                break


if __name__ == "__main__":
    main()
