"""The video-folder reader and the probe's evaluation views, measured on mp4 files made here.

    PYTHONPATH=src python scripts/vjepa_video_folder_demo.py write OUT [--train 192 --test 96]
    attnlab run OUT/videos.yaml --run-dir OUT/run
    PYTHONPATH=src python scripts/vjepa_video_folder_demo.py table OUT/run [--steps 300]

``write``: sprite videos (:mod:`attnlab.data.sprites`, VMDS style, 1-3 sprites, 32 frames of
64 x 64 placed on a black 64 x 80 canvas, so that the reader resizes and crops) as H.264 mp4
files, ``train.csv`` / ``test.csv`` of ``path label`` lines (label: the number of sprites - 1) and
the recipe ``videos.yaml`` (V-JEPA pre-training on them). ``table``: refits the frozen probes of
the run (single clips, as the task does) on the target encoder and a random encoder (the floor),
then tests them with 1 clip x 1 view, 2 clips, 2 clips x 3 crops and 2 clips x 3 crops x 3 shifts,
and on still clips of one frame (the image evaluation); one markdown row each.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import cast

import av
import numpy as np
import torch
from safetensors.torch import load_file

from attnlab.data.sprites import generate_clip, sprite_preset
from attnlab.data.video_folder import VideoFolderData
from attnlab.models.vjepa.encoder import VideoViT
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model
from attnlab.train.vjepa_probe import KINDS, ProbeConfig, average_views, extract, fit_probe
from attnlab.train.vjepa_views import evaluation_views, still_clips

RECIPE = """description: V-JEPA on sprite videos read from mp4 files (the video-folder demo)
seed: 0
task:
  name: vjepa
  masks:
    - {{num_blocks: 8, spatial_scale: [0.15, 0.15], aspect_ratio: [0.75, 1.5]}}
    - {{num_blocks: 2, spatial_scale: [0.7, 0.7], aspect_ratio: [0.75, 1.5]}}
  probe: {{steps: 300, num_views: 3, view_shift: 4}}
model: {{name: vjepa-tiny-mfmnist, in_chans: 3}}
data:
  name: video-folder
  train_csv: {out}/train.csv
  test_csv: {out}/test.csv
  val_fraction: 0.1
  frames_per_clip: 8
  frame_step: 2
  size: 48
  num_clips: 2
  num_views: 3
  batch_size: 16
  eval_batch_size: 32
optim: {{name: adamw, lr: 1.0e-3, weight_decay: 0.04, warmup_steps: 40}}
trainer: {{max_steps: 400, val_every: 400, checkpoint_every: 200}}
"""


def write_video(path: Path, frames: np.ndarray) -> None:
    """Frames (T, H, W, 3) uint8 as near-lossless H.264 in mp4."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = cast(av.VideoStream, container.add_stream("libx264", rate=16))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write(out: Path, train: int, test: int) -> None:
    config = dataclasses.replace(sprite_preset("vmds"), num_frames=32, min_objects=1, max_objects=3)
    out.mkdir(parents=True, exist_ok=True)
    for split, count, seed in (("train", train, 0), ("test", test, 1)):
        lines = []
        for i in range(count):
            clip = generate_clip(config, seed, i)
            canvas = np.zeros((32, 64, 80, 3), np.uint8)  # (T, H, W, 3): wider than high
            canvas[:, :, 8:72] = clip.frames
            name = f"{split}_{i:04d}.mp4"
            write_video(out / name, canvas)
            lines.append(f"{name} {clip.tracks.num_objects - 1}\n")
        (out / f"{split}.csv").write_text("".join(lines))
    (out / "videos.yaml").write_text(RECIPE.format(out=out.resolve()))


def accuracy(encoder: torch.nn.Module, probe: torch.nn.Module, data: VideoFolderData, views: int) -> float:
    hits = total = 0
    for batch in data.test_dataloader():
        shown = evaluation_views(batch, views, 4)  # (B, V, C, T, H, W)
        logits = probe(encoder(shown.flatten(0, 1))).unflatten(0, shown.shape[:2])
        hits += int((average_views(logits, "softmax").argmax(-1) == batch["label"]).sum())
        total += len(batch["label"])
    return hits / total


def image_accuracy(
    encoder: torch.nn.Module, probe: torch.nn.Module, data: VideoFolderData, frame: int
) -> float:
    hits = total = 0
    for batch in data.test_dataloader():
        logits = probe(encoder(still_clips(batch["input"], frame)))
        hits += int((logits.argmax(-1) == batch["label"]).sum())
        total += len(batch["label"])
    return hits / total


def table(run: Path, steps: int) -> None:
    spec = resolve(run / "config.yaml", [])
    model = build_model(spec.model_name, spec.model_config)
    model.load_state_dict(load_file(run / "model.safetensors"))
    args = dict(spec.data_args)
    torch.manual_seed(0)
    floor = VideoViT(model.config.encoder())
    settings = [("1 clip x 1 crop", 1, 1, 1), ("2 clips", 2, 1, 1), ("2 clips x 3 crops", 2, 3, 1)]
    settings.append(("2 clips x 3 crops x 3 shifts", 2, 3, 3))
    print("| encoder | probe | " + " | ".join(s[0] for s in settings) + " | still frame 0 |")
    print("| --- | --- |" + " --- |" * (len(settings) + 1))
    base = VideoFolderData(seed=spec.seed, **args | {"num_clips": 1, "num_views": 1})
    classes = len(base.label_names["label"])
    for name, encoder in (("target encoder", model.target_encoder), ("random (floor)", floor)):
        encoder.eval()
        with torch.no_grad():
            feats, labels = extract(encoder, base.probe_dataloader(), ["label"], torch.device("cpu"))
            stills = ({**b, "input": still_clips(b["input"], 0)} for b in base.probe_dataloader())
            still_feats, _ = extract(encoder, stills, ["label"], torch.device("cpu"))
        for i, kind in enumerate(KINDS):
            config = ProbeConfig(steps=steps)
            probe = fit_probe(kind, feats, labels["label"], classes, config, seed=i)
            still_probe = fit_probe(kind, still_feats, labels["label"], classes, config, seed=i)
            row = []
            with torch.no_grad():
                for _, clips, crops, shifts in settings:
                    data = VideoFolderData(seed=spec.seed, **args | {"num_clips": clips, "num_views": crops})
                    row.append(accuracy(encoder, probe, data, shifts))
                row.append(image_accuracy(encoder, still_probe, base, 0))
            print(f"| {name} | {kind} | " + " | ".join(f"{100 * a:.1f}" for a in row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--train", type=int, default=192)
    w.add_argument("--test", type=int, default=96)
    t = sub.add_parser("table")
    t.add_argument("run", type=Path)
    t.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.action == "write":
        write(args.out, args.train, args.test)
    else:
        table(args.run, args.steps)


if __name__ == "__main__":
    main()
