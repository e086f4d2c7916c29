"""CLEVRER-lite (or CLEVRER) questions for Aloe: the ``clevrer-qa`` datamodule.

The videos are those of :mod:`attnlab.data.clevrer_lite_data` (generated on first use
into a cache folder, or ``root``; splits by scene-index ranges); the questions come
from the folder's ``questions.json`` (CLEVRER: ``train.json``, ``validation.json``,
``test.json`` in the folder or its ``questions/``). One item per question:

- the video's input, by ``encoder``:

  * ``"oracle"``: ``objects`` (T, K, 16) float32, ground truth from the annotation per
    object (object_property order, K = ``max_objects``, zero padding): one-hot colour
    (8), material (2) and shape (3), location x, y and inside-camera-view (0/1);
  * ``"frames"``: ``video`` (T, 3, S, S) float32 in [0, 1], for models that encode it
    themselves (``aloe-frames``, ``aloe-slots``);
  * ``"kmeans"``: ``objects`` (T, K, 9), K = ``kmeans_clusters``: the tokens of each frame's
    k-means clusters of its pixels' chromaticity and (y, x), the floor of the slot rows
    (:func:`attnlab.data.cluster_tokens.cluster_tokens`; with ``slot_pixels`` (T, K, 11), the
    clusters' extent too), made and cached as the latents below;
  * a finished object-centric run folder (ViMON, AttnViMON, SFA, MONet): ``objects``
    (T, K, D + 3), per slot its posterior mean and its mask's centroid and area
    (:func:`attnlab.models.video_qa.aloe_slots.object_latents`; with ``slot_pixels``
    (T, K, D + 11): the mean and spread of the frame's rgb under each slot's mask and the
    mask's extent between them, :func:`attnlab.models.video_qa.mask_pixels.mask_pixels`),
    extracted once per split in batches under ``torch.no_grad`` and cached in
    ``latents-<key>.safetensors`` next to the data; the key covers the encoder's weights, so
    another run extracts again. The datamodule never reads the run folder: it names it
    (:meth:`ClevrerQAData.submodels`), the engine builds the encoder
    (:func:`attnlab.train.composite.attach_submodels`, frozen) and
    :meth:`ClevrerQAData.attach` hands it over;

  the tokens are given as they are; ``model.standardize`` scales them inside Aloe
  (:class:`attnlab.layers.feature_scale.FeatureScale`, fitted on the training split's tokens).
- ``question`` (L,) int64: word ids of :func:`attnlab.data.clevrer_lite.vocab.tokenize`
  (1 + index in ``QUESTION_WORDS``, 0 padding), L = ``max_question_len``;
- ``answer`` () int64: index in ``ANSWERS`` (descriptive), -1 for multiple choice;
- ``choices`` (C, Lc) int64 and ``choice_labels`` (C,) float32 (1 correct, 0 wrong),
  C = ``max_choices``, Lc = ``max_choice_len``; all padding for descriptive questions
  and for a question's missing choices;
- ``question_type`` () int64: index in ``QUESTION_TYPES`` (descriptive, explanatory,
  predictive, counterfactual); ``scene_index`` () int64.

A question with an unknown word, answer or type, too many words or choices, whose
video is missing or has too few frames, is a one-line InputError; with
``skip_broken`` it is skipped instead and counted (``skipped[split]``, and a logged
warning with the counts per reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES, read_annotation, read_questions
from attnlab.data.clevrer_lite.questions import QUESTION_TYPES
from attnlab.data.clevrer_lite.vocab import ANSWERS, QUESTION_WORDS, tokenize
from attnlab.data.clevrer_lite.writer import QUESTION_FILE
from attnlab.data.clevrer_lite_data import (
    CACHE_VERSION,
    ClevrerFolder,
    ClevrerSource,
    ClipCache,
    check_sizes,
    clip_spec,
)
from attnlab.data.cluster_tokens import CLUSTER_TOKEN_DIM, cluster_tokens
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError, InputError
from attnlab.files import atomic_write
from attnlab.models._submodel import SubModel, UsesSubModels
from attnlab.models.outputs import ObjectCentricModel
from attnlab.models.video_qa.aloe_slots import object_latents, token_dim
from attnlab.models.video_qa.mask_pixels import COLOUR_DIM, PIXEL_DIM

log = logging.getLogger(__name__)

WORD_IDS = {word: i + 1 for i, word in enumerate(QUESTION_WORDS)}  # 0 is padding
VOCAB_SIZE = len(QUESTION_WORDS) + 1
ANSWER_IDS = {answer: i for i, answer in enumerate(ANSWERS)}
ORACLE_DIM = len(COLORS) + len(MATERIALS) + len(SHAPES) + 3  # + x, y, in view
CLEVRER_QUESTION_FILES = ("train.json", "validation.json", "test.json")
KEYWORDS = ("oracle", "frames", "kmeans")


# ---------------------------------------------------------------- questions


class Broken(Exception):
    """A question that cannot be used: ``reason`` counts it, ``message`` explains it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def question_files(root: Path) -> list[Path]:
    """The folder's question files: CLEVRER-lite's one, or CLEVRER's per split."""
    if (root / QUESTION_FILE).is_file():
        return [root / QUESTION_FILE]
    found = [d / name for d in (root, root / "questions") for name in CLEVRER_QUESTION_FILES]
    found = [path for path in found if path.is_file()]
    if not found:
        raise InputError(
            f"no question file in {root} ({QUESTION_FILE}, or CLEVRER's {', '.join(CLEVRER_QUESTION_FILES)})"
        )
    return found


def questions_by_scene(root: Path) -> dict[int, tuple[Path, list[dict[str, Any]]]]:
    """Scene index -> (its question file, its questions)."""
    out: dict[int, tuple[Path, list[dict[str, Any]]]] = {}
    for path in question_files(root):
        for scene, questions in read_questions(path).items():
            if scene in out:
                raise InputError(f"scene {scene} has questions in both {out[scene][0]} and {path}")
            out[scene] = (path, questions)
    return out


def word_ids(text: Any, length: int, what: str) -> list[int]:
    """``text``'s word ids padded to ``length``; :class:`Broken` for unknown words or too many."""
    if not isinstance(text, str):
        raise Broken("malformed question", f"{what} is not a string: {text!r}")
    words = tokenize(text)
    unknown = [w for w in words if w not in WORD_IDS]
    if unknown:
        raise Broken(
            "unknown word",
            f"{what} has the unknown word '{unknown[0]}': \"{text}\" "
            "(the vocabulary is attnlab.data.clevrer_lite.vocab.QUESTION_WORDS)",
        )
    if not words or len(words) > length:
        limit = "max_choice_len" if "choice" in what else "max_question_len"
        raise Broken("too long", f'{what} has {len(words)} words, data.{limit}={length}: "{text}"')
    return [WORD_IDS[w] for w in words] + [0] * (length - len(words))


@dataclass(frozen=True)
class Lengths:
    question: int
    choice: int
    choices: int

    def __post_init__(self) -> None:
        if min(self.question, self.choice, self.choices) < 1:
            raise ConfigError("data.max_question_len, max_choice_len and max_choices must be >= 1")


def encode_question(q: Any, lengths: Lengths, where: str) -> dict[str, Any]:
    """One question's arrays (see the module docstring); :class:`Broken` if it cannot be used."""
    if not isinstance(q, dict):
        raise Broken("malformed question", f"{where} is not an object")
    where = f"{where} (question_id {q.get('question_id', '?')})"
    qtype = q.get("question_type")
    if qtype not in QUESTION_TYPES:
        raise Broken(
            "unknown question type", f"{where} has question_type {qtype!r}, not one of {QUESTION_TYPES}"
        )
    out = {
        "question": word_ids(q.get("question"), lengths.question, f"{where}, question"),
        "question_type": QUESTION_TYPES.index(qtype),
        "answer": -1,
        "choices": [[0] * lengths.choice for _ in range(lengths.choices)],
        "choice_labels": [0.0] * lengths.choices,
    }
    if qtype == "descriptive":
        if "answer" not in q:
            raise Broken("no answer", f"{where} has no answer (a test split?)")
        answer = str(q["answer"])
        if answer not in ANSWER_IDS:
            raise Broken("unknown answer", f"{where} has the unknown answer '{answer}' (known: {ANSWERS})")
        out["answer"] = ANSWER_IDS[answer]
        return out
    choices = q.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Broken("no choices", f"{where} is multiple choice without choices")
    if len(choices) > lengths.choices:
        raise Broken(
            "too many choices", f"{where} has {len(choices)} choices, data.max_choices={lengths.choices}"
        )
    for j, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise Broken("malformed question", f"{where}, choice {j} is not an object")
        if choice.get("answer") not in ("correct", "wrong"):
            raise Broken(
                "no answer", f"{where}, choice {j} has answer {choice.get('answer')!r}, not correct/wrong"
            )
        out["choices"][j] = word_ids(choice.get("choice"), lengths.choice, f"{where}, choice {j}")
        out["choice_labels"][j] = 1.0 if choice["answer"] == "correct" else 0.0
    return out


# ---------------------------------------------------------------- oracle features


def oracle_features(annotation: Any, indices: list[int], max_objects: int) -> np.ndarray:
    """(T, K, 16) float32: per object one-hot colour, material, shape, location x, y, in view."""
    n = len(annotation.objects)
    out = np.zeros((len(indices), max_objects, ORACLE_DIM), np.float32)
    c, m = len(COLORS), len(MATERIALS)
    for k, obj in enumerate(annotation.objects):
        out[:, k, COLORS.index(obj.color)] = 1
        out[:, k, c + MATERIALS.index(obj.material)] = 1
        out[:, k, c + m + SHAPES.index(obj.shape)] = 1
    out[:, :n, -3:-1] = annotation.locations[indices, :, :2]
    out[:, :n, -1] = annotation.in_view[indices]
    return out


def _cached(path: Path, compute: Any) -> dict[str, torch.Tensor]:
    """Tensors from ``path`` (safetensors), computed by ``compute()`` and written atomically if absent."""
    if path.is_file():
        try:
            return load_file(path)
        except Exception as exc:  # a damaged cache is recomputed, not trusted
            log.warning("recomputing %s: %s", path, exc)
    tensors = compute()
    atomic_write(path, lambda f: f.write(save(tensors)))
    return tensors


# ---------------------------------------------------------------- dataset


class ClevrerQuestions(Dataset[dict[str, torch.Tensor]]):
    """Questions (tensors, one row each) over per-video inputs: ``objects`` (N, T, K, D) or a clip cache."""

    def __init__(
        self,
        questions: dict[str, torch.Tensor],
        rows: torch.Tensor,
        *,
        objects: torch.Tensor | None = None,
        clips: ClipCache | None = None,
    ) -> None:
        if (objects is None) == (clips is None):
            raise ValueError("give objects or clips")
        self.questions, self.rows, self.objects, self.clips = questions, rows, objects, clips

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = int(self.rows[index])
        item = {name: values[index] for name, values in self.questions.items()}
        if self.objects is not None:
            item["objects"] = self.objects[row]
        else:
            item["video"] = self.clips.video(row)  # type: ignore[union-attr]
        return item


def _stack(encoded: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    dtypes = {
        "question": torch.int64,
        "question_type": torch.int64,
        "answer": torch.int64,
        "choices": torch.int64,
        "choice_labels": torch.float32,
        "scene_index": torch.int64,
    }
    return {name: torch.tensor([e[name] for e in encoded], dtype=dtype) for name, dtype in dtypes.items()}


# ---------------------------------------------------------------- datamodule


def weights_digest(model: nn.Module) -> str:
    """A short hash of a model's weights (names, shapes, dtypes, values): cached latents are keyed by it."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name} {tuple(t.shape)} {t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@register_datamodule("clevrer-qa")
class ClevrerQAData(DataModule, UsesSubModels):
    """CLEVRER-lite questions (generated on first use, or CLEVRER from ``root``) for Aloe."""

    def __init__(
        self,
        *,
        seed: int,
        encoder: str = "oracle",
        root: str | None = None,
        cache_dir: str | None = None,
        dataset_seed: int = 0,
        image_size: int = 64,
        clip_size: int | None = None,
        max_objects: int = 6,
        train_size: int = 600,
        val_size: int = 100,
        test_size: int = 100,
        num_frames: int = 11,
        stride: int = 3,
        start: int = 0,
        max_question_len: int = 24,
        max_choice_len: int = 16,
        max_choices: int = 4,
        skip_broken: bool = False,
        encoder_batch_size: int = 16,
        kmeans_clusters: int = 7,
        slot_pixels: bool = False,
        workers: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if encoder_batch_size < 1:
            raise ConfigError(f"data.encoder_batch_size must be >= 1, got {encoder_batch_size}")
        if kmeans_clusters < 1:
            raise ConfigError(f"data.kmeans_clusters must be >= 1, got {kmeans_clusters}")
        if not encoder:
            raise ConfigError("data.encoder is empty: oracle, frames, kmeans or an object-centric run folder")
        if slot_pixels and encoder in ("oracle", "frames"):
            raise ConfigError(
                f"data.slot_pixels needs a slot encoder's run folder or kmeans as data.encoder, not {encoder}"
            )
        self.encoder, self.slot_pixels = encoder, slot_pixels
        self._encoder_model: ObjectCentricModel | None = None
        self.source = ClevrerSource(
            root=root,
            cache_dir=cache_dir,
            dataset_seed=dataset_seed,
            image_size=image_size,
            max_objects=max_objects,
            sizes=check_sizes(train_size, val_size, test_size),
            workers=workers,
        )
        self.spec = clip_spec(num_frames, stride, start, image_size, clip_size)
        self.lengths = Lengths(max_question_len, max_choice_len, max_choices)
        self.max_objects, self.skip_broken, self.encoder_batch_size = (
            max_objects,
            skip_broken,
            encoder_batch_size,
        )
        self.kmeans_clusters = kmeans_clusters
        self.skipped: dict[Split, Counter[str]] = {}

    # -- what the task checks the model against -----------------------------
    vocab_size = VOCAB_SIZE
    num_answers = len(ANSWERS)

    @property
    def input_kind(self) -> str:
        """The input key of the items: "video" for frames, else "objects"."""
        return "video" if self.encoder == "frames" else "objects"

    @property
    def object_dim(self) -> int | None:
        """D of ``objects`` (None for frames)."""
        if self.encoder == "frames":
            return None
        if self.encoder == "oracle":
            return ORACLE_DIM
        if self.encoder == "kmeans":
            return CLUSTER_TOKEN_DIM + (PIXEL_DIM - COLOUR_DIM if self.slot_pixels else 0)
        return token_dim(self._slot_encoder().config, pixels=self.slot_pixels)

    # -- the slot encoder, built by the engine ----------------------------------
    def submodels(self) -> dict[str, SubModel]:
        """A run folder as ``encoder`` names a model to build: frozen (latents are extracted once)."""
        if self.encoder in KEYWORDS:
            return {}
        return {"encoder": SubModel(init_from=self.encoder, frozen=True)}

    def attach(self, name: str, module: nn.Module) -> None:
        if name != "encoder" or self.encoder in KEYWORDS:
            raise ConfigError(f"clevrer-qa runs no model '{name}' (data.encoder is {self.encoder})")
        if not isinstance(module, ObjectCentricModel):
            raise InputError(
                f"data.encoder: {self.encoder} trained {type(module).__name__}; an object-centric "
                "encoder (MONet, ViMON, AttnViMON, SFA) is needed"
            )
        if module.config.image_size != self.spec.image_size:
            raise ConfigError(
                f"data.encoder was trained on {module.config.image_size}-pixel frames; "
                f"set data.clip_size {module.config.image_size}"
            )
        self._encoder_model = module

    def _slot_encoder(self) -> ObjectCentricModel:
        if self._encoder_model is None:
            raise ConfigError(
                f"data.encoder {self.encoder}: the encoder is built by the engine "
                "(attnlab.train.composite.attach_submodels), and has not been attached"
            )
        return self._encoder_model

    # -- building -------------------------------------------------------------
    def prepare_data(self) -> None:
        for split in ("train", "val", "test"):
            self.dataset(split)  # generates the data and fills every cache once (rank 0)

    def build(self, split: Split) -> ClevrerQuestions:
        folder = self.source.folder
        skipped: Counter[str] = Counter()
        encoded, scenes, total = self._questions(folder, split, skipped)
        if self.encoder == "oracle":
            objects, problems = self._oracle(folder, scenes)
            inputs: dict[str, Any] = {"objects": objects}
        else:
            clips = ClipCache(folder, scenes, self.spec)
            problems = clips.problems
            inputs = {"clips": clips} if self.encoder == "frames" else {"objects": self._latents(clips)}
        row_of = {scene: row for row, scene in enumerate(scenes)}
        kept = []
        for e in encoded:
            problem = problems.get(e["scene_index"])
            if problem:
                self._broken(Broken("too short video", problem), skipped)
                continue
            kept.append(e)
        self._report(split, skipped, total)
        if not kept:
            raise InputError(f"clevrer-qa {split}: no usable question in {folder.root}")
        rows = torch.tensor([row_of[e["scene_index"]] for e in kept], dtype=torch.int64)
        return ClevrerQuestions(_stack(kept), rows, **inputs)

    def tokens(self, split: Split) -> torch.Tensor:
        """(N, T, K, D) the object tokens of every video of ``split``, as the items give them."""
        data = self.dataset(split)
        if not isinstance(data, ClevrerQuestions) or data.objects is None:
            raise ConfigError(f"data.encoder {self.encoder} gives no object tokens")
        return data.objects

    def _broken(self, broken: Broken, skipped: Counter[str]) -> None:
        if not self.skip_broken:
            raise InputError(f"{broken.message}; fix the data or set data.skip_broken true")
        skipped[broken.reason] += 1

    def _report(self, split: Split, skipped: Counter[str], total: int) -> None:
        self.skipped[split] = skipped
        if skipped:
            detail = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
            log.warning(
                "clevrer-qa %s: skipped %d of %d questions (%s)", split, sum(skipped.values()), total, detail
            )

    def _questions(
        self, folder: ClevrerFolder, split: Split, skipped: Counter[str]
    ) -> tuple[list[dict[str, Any]], list[int], int]:
        """The split's encoded questions, the scenes they need (with a video) and the number asked."""
        wanted = self.source.ranges[split]
        encoded, scenes, total = [], [], 0
        for scene, (path, questions) in sorted(questions_by_scene(folder.root).items()):
            if scene not in wanted or not questions:
                continue
            total += len(questions)
            if scene not in folder.videos:
                for _ in questions:
                    self._broken(
                        Broken(
                            "missing video",
                            f"question file {path}: scene {scene} has questions but no video_{scene:05d}.mp4 "
                            f"under {folder.root}",
                        ),
                        skipped,
                    )
                continue
            if self.encoder == "oracle" and scene not in folder.annotations:
                for _ in questions:
                    self._broken(
                        Broken("missing annotation", f"scene {scene} has no annotation_{scene:05d}.json"),
                        skipped,
                    )
                continue
            scenes.append(scene)
            for i, q in enumerate(questions):
                try:
                    e = encode_question(q, self.lengths, f"question file {path}: scene {scene}, question {i}")
                except Broken as broken:
                    self._broken(broken, skipped)
                    continue
                encoded.append(e | {"scene_index": scene})
        return encoded, scenes, total

    def _key(self, *parts: Any) -> str:
        return hashlib.sha256(json.dumps([CACHE_VERSION, *parts]).encode()).hexdigest()[:16]

    def _oracle(self, folder: ClevrerFolder, scenes: list[int]) -> tuple[torch.Tensor, dict[int, str]]:
        """(N, T, K, 16) ground-truth features of ``scenes`` and the scenes' problems."""
        spec = self.spec
        key = self._key(
            "oracle",
            dataclasses.asdict(spec),
            self.max_objects,
            scenes,
            folder.fingerprint(scenes, ("annotation",)),
        )
        problems: dict[int, str] = {}

        def compute() -> dict[str, torch.Tensor]:
            out = np.zeros((len(scenes), spec.num_frames, self.max_objects, ORACLE_DIM), np.float32)
            ok = np.zeros(len(scenes), np.bool_)
            for row, scene in enumerate(scenes):
                path = folder.annotations[scene]
                ann = read_annotation(path)
                if ann.num_frames < spec.needed:
                    continue
                if len(ann.objects) > self.max_objects:
                    raise InputError(
                        f"annotation {path} has {len(ann.objects)} objects, more than "
                        f"data.max_objects={self.max_objects}"
                    )
                out[row] = oracle_features(ann, spec.indices, self.max_objects)
                ok[row] = True
            return {"objects": torch.from_numpy(out), "ok": torch.from_numpy(ok)}

        cached = _cached(folder.derived_dir() / f"oracle-{key}.safetensors", compute)
        for row in torch.nonzero(~cached["ok"]).flatten().tolist():
            scene = scenes[row]
            total = read_annotation(folder.annotations[scene]).num_frames
            problems[scene] = spec.too_short(f"annotation {folder.annotations[scene]}", total)
        return cached["objects"], problems

    def _latents(self, clips: ClipCache) -> torch.Tensor:
        """(N, T, K, D + 3) the encoder's object tokens of every clip (with ``kmeans``, its clusters'
        tokens, :func:`cluster_tokens`), made once and cached."""
        if self.encoder == "kmeans":
            name = "clusters-extent" if self.slot_pixels else "clusters"
            key = self._key(name, self.kmeans_clusters, clips.path.name)

            def make(video: torch.Tensor) -> torch.Tensor:
                return cluster_tokens(video, self.kmeans_clusters, extent=self.slot_pixels)

        else:
            encoder = self._slot_encoder()
            name = "latents-pixels" if self.slot_pixels else "latents"
            key = self._key(name, weights_digest(encoder), clips.path.name)
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            encoder.eval().to(device)  # eval: the posterior mean, not a sample; once, not per batch

            def make(video: torch.Tensor) -> torch.Tensor:
                return object_latents(encoder, video.to(device), pixels=self.slot_pixels)[0]

        @torch.no_grad()
        def compute() -> dict[str, torch.Tensor]:
            rows = list(range(len(clips.scenes)))
            parts = []
            for lo in range(0, len(rows), self.encoder_batch_size):
                video = torch.stack([clips.video(r) for r in rows[lo : lo + self.encoder_batch_size]])
                parts.append(make(video).float().cpu())
            return {"objects": torch.cat(parts).contiguous()}

        return _cached(clips.path.parent / f"{name}-{key}.safetensors", compute)["objects"]
