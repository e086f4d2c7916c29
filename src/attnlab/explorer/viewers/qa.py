"""The viewer of video question answering (Aloe on CLEVRER-lite, :mod:`attnlab.train.video_qa`): one
question about one video, the model's answer and where its [CLS] token looks.

Aloe reads one sequence ``[CLS | question words | choice words | objects of every frame]`` and
answers from CLS (:mod:`attnlab.models.video_qa.aloe`); a multiple-choice question runs once per
choice (the user picks the run shown). Shown per attention layer: CLS's weights on the object
tokens as a frames x objects matrix (the mean of the heads per layer, then one grid of every layer
and head), on the video where the objects' pixels are known (the oracle's objects, through the
generator's instance masks; a frame token tints its whole frame), and on the words as a notes line.
The weights themselves are in the answer's "attention", for whoever reads the API.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES, read_annotation, read_video
from attnlab.data.clevrer_lite import read_masks
from attnlab.data.clevrer_lite.questions import QUESTION_TYPES
from attnlab.data.clevrer_lite.vocab import ANSWERS, QUESTION_WORDS
from attnlab.data.clevrer_qa import ClevrerQAData, ClevrerQuestions
from attnlab.data.datamodule import DataModule
from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.explorer.pictures import figure_url, png_url, rounded, unit
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable
from attnlab.models.video_qa.aloe import PAD, AloeModel
from attnlab.models.video_qa.aloe_frames import AloeFrames
from attnlab.train.video_qa import VideoQATask

# examples per test video: its first descriptive questions, then one of each multiple-choice type
DESCRIPTIVE_PER_VIDEO = 2
TOP_ANSWERS = 5
FLOOR = 0.2  # the least attended object's shade on the video, above the ground's 0
CHOICE = re.compile(r"choice (\d+)")


# ---------------------------------------------------------------- examples


def qa_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """Test questions spread over the videos and kinds: per video its first two descriptive
    questions and its first question of each multiple-choice type (the test split holds some 30
    questions per video, so its first 32 would all be about one video)."""
    assert isinstance(data, ClevrerQAData)  # the video-qa task refuses other data
    test = data.dataset("test")
    assert isinstance(test, ClevrerQuestions)
    kinds, scenes = test.questions["question_type"].tolist(), test.questions["scene_index"].tolist()
    taken: dict[tuple[int, int], int] = {}  # (scene, type) -> questions taken
    chosen = []
    for i, (kind, scene) in enumerate(zip(kinds, scenes, strict=True)):
        wanted = DESCRIPTIVE_PER_VIDEO if kind == 0 else 1
        if taken.get((scene, kind), 0) < wanted:
            taken[(scene, kind)] = taken.get((scene, kind), 0) + 1
            chosen.append(i)
    return [test[i] for i in chosen[:MAX_EXAMPLES]]


# ---------------------------------------------------------------- words


def decode(ids: torch.Tensor) -> str:
    """Word ids (padding 0) as the sentence the generator wrote: capitalised, '?' attached."""
    words = [QUESTION_WORDS[i - 1] for i in ids.tolist() if i != PAD]
    text = " ".join(words).replace(" ?", "?")
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- what the tokens are


def _object_labels(data: ClevrerQAData, x: torch.Tensor, objects: int) -> list[str]:
    """A name per object token: the oracle's one-hot attributes, else slot or frame token."""
    if data.encoder != "oracle":
        return ["frame token"] if objects == 1 else [f"slot {k}" for k in range(objects)]
    c, m = len(COLORS), len(MATERIALS)
    labels = []
    for token in x[0]:  # (K, 16): the attributes do not change over the frames
        if not token[: c + m + len(SHAPES)].any():
            labels.append("(no object)")  # the oracle pads scenes to max_objects
            continue
        color, material = COLORS[int(token[:c].argmax())], MATERIALS[int(token[c : c + m].argmax())]
        labels.append(f"{color} {material} {SHAPES[int(token[c + m : c + m + len(SHAPES)].argmax())]}")
    return labels


def _clip(data: ClevrerQAData, example: dict[str, torch.Tensor]) -> torch.Tensor:
    """The clip the question is about, (T, 3, S, S) in [0, 1]: the example's own, or decoded from
    the data folder's video (the oracle and slot runs carry only object tokens)."""
    if "video" in example:
        return example["video"]
    spec, scene = data.spec, int(example["scene_index"])
    frames, _ = read_video(data.source.folder.videos[scene], spec.indices, (spec.image_size,) * 2)
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (T, H, W, 3) uint8 -> (T, 3, H, W)


def _token_pixels(data: ClevrerQAData, scene: int) -> torch.Tensor | None:
    """(T, H, W) int64: the oracle token each pixel of the clip shows, -1 for the ground, from the
    generator's instance masks (visible pixels, after occlusion); None without them (real CLEVRER,
    slot tokens)."""
    folder = data.source.folder
    if data.encoder != "oracle" or scene not in folder.masks or scene not in folder.annotations:
        return None
    ids = torch.from_numpy(read_masks(folder.masks[scene])["ids"][data.spec.indices].astype(np.int64))
    tokens = torch.full(ids.shape, -1)
    for k, obj in enumerate(read_annotation(folder.annotations[scene]).objects):  # token k is object k
        tokens[ids == obj.object_id + 1] = k  # 0 is the ground, object_id + 1 the object
    return tokens


def _painted(weights: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(T, H, W): each object's weight (T, K) on its pixels, from FLOOR for the clip's least attended
    object to 1 for the most attended (one scale for the clip, so frames compare), the ground 0."""
    present = weights[:, : int(tokens.max()) + 1]  # the scene's objects, not the oracle's padding
    low, high = present.min(), present.max()
    shade = FLOOR + (1 - FLOOR) * (present - low) / (high - low) if high > low else torch.ones_like(present)
    index = tokens.clamp(min=0).flatten(1)  # (T, H * W)
    return torch.where(tokens >= 0, shade.gather(1, index).view(tokens.shape), 0.0)


# ---------------------------------------------------------------- pictures


def _object_matrix(values: torch.Tensor, frames: list[int], labels: list[str]) -> str:
    """One layer's CLS-to-object weights (T, K), the mean of its heads, as a labelled heat matrix
    (colours from the smallest weight to the largest; the bar says what they are)."""
    T, K = values.shape
    figure = Figure(figsize=(1.6 + 0.3 * K, 1.4 + 0.2 * T), dpi=100, layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(values.numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(K), labels, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(T), [str(f) for f in frames], fontsize=7)
    ax.set_ylabel("video frame", fontsize=8)
    figure.colorbar(image, ax=ax).ax.tick_params(labelsize=7)
    return figure_url(figure)


def _head_grid(weights: torch.Tensor) -> str:
    """Every layer's and head's CLS-to-object weights (layers, heads, T, K): a row of frames x
    objects matrices per layer, on one colour scale, to compare the heads at a glance."""
    layers, heads = weights.shape[:2]
    figure = Figure(figsize=(0.6 + 1.0 * heads, 0.3 + 1.0 * layers), dpi=100, layout="constrained")
    axes = figure.subplots(layers, heads, squeeze=False)
    low, high = float(weights.min()), float(weights.max())
    image = None
    for (i, h), ax in np.ndenumerate(axes):
        image = ax.imshow(weights[i, h].numpy(), cmap="viridis", vmin=low, vmax=high, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(f"head {h}", fontsize=8)
        if h == 0:
            ax.set_ylabel(f"layer {i}", fontsize=8)
    assert image is not None
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8).ax.tick_params(labelsize=7)
    return figure_url(figure)


# ---------------------------------------------------------------- the view


def _choice_run(method: str | None, count: int, notes: list[str]) -> int:
    """Which run's attention to show: a multiple-choice question runs once per choice. The page
    keeps the chosen "choice N" across examples, so one that does not fit this question falls
    back to the first run with a note instead of an error."""
    if method is None:
        return 0
    match = CHOICE.fullmatch(method)
    if match is None:
        raise NotViewable(
            f"{method} is not offered here: Aloe's view shows the attention of each choice's run "
            "(choice 1, choice 2, ...), no CAM methods"
        )
    run = int(match.group(1)) - 1
    if count == 0:
        notes.append("a descriptive question has one run: the choice asked for does not apply")
        return 0
    if not 0 <= run < count:
        notes.append(f"this question has {count} choices: showing choice 1's run")
        return 0
    return run


def _prediction(
    answer_logits: torch.Tensor | None, choice_logits: torch.Tensor | None, count: int
) -> list[dict[str, Any]]:
    """The likeliest answers of a descriptive question, or each real choice's verdict with its
    probability (the sigmoid of its logit for "correct", one minus it for "wrong")."""
    if answer_logits is not None:
        top = answer_logits[0].softmax(-1).topk(TOP_ANSWERS)
        return [
            {"label": ANSWERS[int(i)], "p": round(float(p), 4)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]
    assert choice_logits is not None
    correct = choice_logits[0, :count].sigmoid()
    return [
        {
            "label": f"choice {j + 1}: {'correct' if p >= 0.5 else 'wrong'}",
            "p": round(float(max(p, 1 - p)), 4),
        }
        for j, p in enumerate(correct)
    ]


def _target(example: dict[str, torch.Tensor], count: int) -> str:
    if count == 0:
        return ANSWERS[int(example["answer"])]
    labels = example["choice_labels"][:count]
    return ", ".join(f"choice {j + 1}: {'correct' if y > 0.5 else 'wrong'}" for j, y in enumerate(labels))


def _word_line(layer: int, row: torch.Tensor, words: list[str], objects: int) -> str:
    """Where one layer's CLS row (mean of heads) goes: itself, the words (each), the objects.
    ``words`` are the word keys after CLS in order, "" for padding (which gets no weight)."""
    on_words = row[1 : 1 + len(words)]
    each = " · ".join(f"{w} {100 * float(v):.1f}" for w, v in zip(words, on_words, strict=True) if w)
    return (
        f"layer {layer}, [CLS] (mean of heads): {float(row[0]):.0%} on itself, "
        f"{float(on_words.sum()):.0%} on the words, {float(row[-objects:].sum()):.0%} on the objects; "
        f"per word (%): {each}"
    )


def _names(ids: torch.Tensor) -> list[str]:
    """One entry per word position: the word, or "" for padding."""
    return [QUESTION_WORDS[i - 1] if i != PAD else "" for i in ids.tolist()]


def view_qa(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """One question about one video: the question and choices, Aloe's answer beside the true one,
    and its [CLS] token's attention per layer over the objects of every frame and over the words."""
    task, data = loaded.task, loaded.data
    assert isinstance(task, VideoQATask) and isinstance(data, ClevrerQAData)
    model = task.model
    assert isinstance(model, AloeModel)
    x, question, choices = example[task.input_kind], example["question"], example["choices"]
    kind = QUESTION_TYPES[int(example["question_type"])]
    count = 0 if kind == "descriptive" else int((choices != PAD).any(-1).sum())  # choices fill from the first
    notes = [f"{kind} question: {decode(question)}"]
    notes += [f"choice {j + 1}: {decode(choices[j])}" for j in range(count)]
    run = _choice_run(method, count, notes)
    with torch.no_grad(), capture(model.aloe_core) as record:
        out = model(x[None], question[None], choices=choices[None] if count else None)
    # keys: [CLS | question words | the run's choice words (multiple choice) | T * K objects]
    words = _names(question) + (_names(choices[run]) if count else [])
    rows = torch.stack([record[name][run, :, 0] for name in record])  # (layers, heads, keys): CLS's row
    T, tokens = x.shape[0], rows.shape[-1] - 1 - len(words)  # tokens: T * K objects
    on_objects = rows[..., -tokens:].reshape(*rows.shape[:2], T, tokens // T)  # (layers, heads, T, K)
    if count:
        notes.append(
            f"attention below: [CLS] of the run with choice {run + 1} (pick another under 'map from')"
        )
    notes += [_word_line(i, layer.mean(0), words, tokens) for i, layer in enumerate(rows)]
    labels = _object_labels(data, x, on_objects.shape[-1])
    notes.append("objects: " + ", ".join(f"{k} {name}" for k, name in enumerate(labels)))
    frames = list(data.spec.indices)
    frame_tokens = isinstance(model, AloeFrames)
    picture, maps = _input_and_maps(data, example, on_objects, frame_tokens, labels, notes)
    return {
        "input": picture,
        "prediction": _prediction(out.answer_logits, out.choice_logits, count),
        "target": _target(example, count),
        "maps": maps,
        "methods": [f"choice {j + 1}" for j in range(count)],
        "notes": notes,
        "pictures": _pictures(on_objects, frames, labels),
        "attention": {
            "layers": list(record),
            "words": [w for w in words if w],
            "objects": [[rounded(h) for h in layer] for layer in on_objects],  # per layer, head: T * K
            "on_words": [[rounded(h[1 : 1 + len(words)][_real(words)]) for h in layer] for layer in rows],
        },
    }


def _real(words: list[str]) -> torch.Tensor:
    """(len(words),) bool: the word positions that are not padding."""
    return torch.tensor([bool(w) for w in words])


def _pictures(on_objects: torch.Tensor, frames: list[int], labels: list[str]) -> list[dict[str, str]]:
    """The frames x objects matrices (layers, heads, T, K): each layer's mean of heads, then all."""
    means = [
        {
            "png": _object_matrix(layer.mean(0), frames, labels),
            "caption": f"layer {i}: [CLS] to each object per frame (mean of heads)",
        }
        for i, layer in enumerate(on_objects)
    ]
    caption = "[CLS] to the objects per layer and head (frames down, objects across, as above)"
    return [*means, {"png": _head_grid(on_objects), "caption": caption}]


def _input_and_maps(
    data: ClevrerQAData,
    example: dict[str, torch.Tensor],
    on_objects: torch.Tensor,
    frame_tokens: bool,
    labels: list[str],
    notes: list[str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The clip with each layer's object weights (mean of heads) over the frames where the objects'
    pixels are known; without a readable video, the frames x objects matrices as the input."""
    mean = on_objects.mean(1)  # (layers, T, K)
    picture: dict[str, Any]
    try:
        clip = _clip(data, example)
    except InputError as exc:  # a damaged video: the matrices still say what the model attends to
        notes.append(f"the video cannot be shown ({exc}): the attention is drawn as frames x objects")
        picture = {"kind": "matrix", "rows": [f"frame {f}" for f in data.spec.indices], "cols": labels}
        maps = [
            {
                "name": f"layer {i}: [CLS] to objects",
                "shape": list(layer.shape[-2:]),
                "heads": [unit(m), *(unit(h) for h in layer)],  # the page draws the first: the mean
            }
            for i, (m, layer) in enumerate(zip(mean, on_objects, strict=True))
        ]
        return picture, maps
    picture = {"kind": "video", "frames": [png_url(f) for f in clip], "shape": list(clip.shape[-2:])}
    if frame_tokens:  # one token per frame: its weight tints the whole frame
        return picture, [
            {
                "name": f"layer {i}: [CLS] to frames",
                "shape": [1, 1],
                "frames": [[v] for v in unit(layer[:, 0])],
            }
            for i, layer in enumerate(mean)
        ]
    tokens = _token_pixels(data, int(example["scene_index"]))
    if tokens is None:
        notes.append("these tokens have no pixels to paint on the video: their attention is in the matrices")
        return picture, []
    notes.append(
        f"on the video: each object's weight on its visible pixels, from {FLOOR} (the clip's least attended "
        "object) to 1 (the most)"
    )
    maps = [
        {
            "name": f"layer {i}: [CLS] to objects",
            "shape": list(tokens.shape[1:]),
            "frames": [rounded(f) for f in _painted(layer, tokens)],
        }
        for i, layer in enumerate(mean)
    ]
    return picture, maps
