"""Aloe: attention over learned object embeddings (Ding et al., NeurIPS 2021, arXiv:2012.08508).

Video question answering on object latents: one transformer over

    [CLS | question words (L) | choice words (Lc, multiple choice only) | objects (T * K)]

where the objects are per-frame slot latents (MONet in the paper, any (B, T, K, D_obj)
here) projected to the model width. Descriptive questions read an answer word from
CLS; a multiple-choice question is run once per choice (question + that choice's
words) and CLS gives one true/false logit per choice. An auxiliary self-supervised
loss masks some object tokens (a learned mask embedding replaces them) and predicts
them from the transformer's output there (:mod:`attnlab.objectives.aloe`).

Reference implementation: google-deepmind/deepmind-research
``object_attention_for_reasoning/model.py`` (inference only, TF1/Sonnet). Its
sizes, which the ``aloe-paper`` preset copies: 25 frames sub-sampled from CLEVRER's
128 by striding (random offset in training, fixed for evaluation), 8 MONet slots of
16 dims, 28 pre-norm layers, 10 heads of 18 dims (width 180), MLP hidden 1024 with
ReLU, dropout 0.1, answer heads Linear(128)-ReLU-Linear, question vocabulary 82,
answer vocabulary 22, questions up to 20 words, choices up to 12, 4 choices.

Implementation details and deviations:

- token types: the reference appends 2-dim one-hot ids (word/vision, question/choice)
  to every input; here one learned token-type embedding (question, choice, object)
  is added, and CLS is a learned vector (zero-initialised dummy there).
- positions: the reference uses Transformer-XL relative positions over the whole
  flattened sequence, so slot order leaks into it and it shuffles the slots (one
  permutation for all frames) to counter that. Here words carry learned positions
  (restarting at 0 for the choice), objects a learned frame-time embedding and no
  slot-order embedding, so the model is exactly invariant to object order within a
  frame; :func:`shuffle_objects` is kept for parity and for encoders that do order.
- padding words (id 0) are masked out of attention (the reference attends to them).
- the two answer heads share their hidden layer: ``Linear(width, head_hidden)-ReLU-
  Linear(head_hidden, A + 1)``; the first A outputs are the descriptive logits and
  the last one is the multiple-choice logit (the reference has two separate MLPs).
- masked objects: ``round(mask_ratio * K)`` (at least 1) objects of every frame are
  replaced by the mask embedding after the input projection (they keep their frame
  embedding); ``mask_ratio = 1/8`` with 8 slots is one object per frame, the scheme
  of the public PyTorch reimplementation (pairlab/SlotFormer ``clevrer_vqa``).
  Predictions are ``Linear(width, D_obj)`` of the final (normed) output.
- ``standardize`` (off by default; not in the paper) scales each token feature by the
  training split's mean and standard deviation (:class:`~attnlab.layers.feature_scale.FeatureScale`,
  fitted by the video-qa task before training) before everything else, the masked-object
  targets included: a slot latent's coordinates and a mask's pixel spreads differ in size by
  a factor of ten, and Aloe trained on both at their own scale reads only the larger.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.feature_scale import FeatureScale
from attnlab.layers.transformer import TransformerBlock
from attnlab.models._registry import register_model

QUESTION, CHOICE, OBJECT = 0, 1, 2  # token types
PAD = 0  # word id of padding


# ---------------------------------------------------------------- config


@dataclass
class AloeConfig:
    """Aloe's sizes. Defaults: a small model that trains on a CPU in minutes.

    The paper's model (preset ``aloe-paper``): width 180 (10 heads x 18), depth 28,
    MLP hidden 1024 (``mlp_ratio = 1024 / 180``), dropout 0.1, head_hidden 128, on
    16-dim MONet latents of 8 slots and 25 frames.
    """

    object_dim: int = 16  # D_obj of the slot latents (+ 3 with :func:`append_mask_summary`)
    width: int = 128
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1  # after attention and MLP projections
    attn_drop: float = 0.0
    question_vocab_size: int = 82  # word ids, 0 = padding (shared by questions and choices)
    answer_vocab_size: int = 22
    max_question_len: int = 20
    max_choice_len: int = 12
    max_frames: int = 25
    head_hidden: int = 128
    mask_ratio: float = 0.125  # fraction of each frame's objects masked in training (>= 1 if > 0)
    # each token feature scaled by the training split's mean and std (not in the paper, whose MONet
    # latents share one scale): fitted by the video-qa task before training, saved with the weights
    standardize: bool = False


def aloe_fields(config: AloeConfig) -> AloeConfig:
    """The plain :class:`AloeConfig` part of a subclass's config (models that wrap Aloe)."""
    names = {f.name for f in dataclasses.fields(AloeConfig)}
    return AloeConfig(**{k: v for k, v in dataclasses.asdict(config).items() if k in names})


def video_example_inputs(aloe: Aloe, batch_size: int, image_size: int) -> dict[str, torch.Tensor]:
    """``aloe``'s example inputs with a random video (B, T, 3, S, S) in place of the object tokens."""
    inputs = aloe.example_inputs(batch_size)
    frames = inputs.pop("objects").shape[1]
    return {"video": torch.rand(batch_size, frames, 3, image_size, image_size), **inputs}


def check_config(c: AloeConfig) -> None:
    """One-line ConfigErrors for impossible sizes."""
    sizes = {
        "object_dim": c.object_dim,
        "width": c.width,
        "depth": c.depth,
        "num_heads": c.num_heads,
        "answer_vocab_size": c.answer_vocab_size,
        "max_question_len": c.max_question_len,
        "max_choice_len": c.max_choice_len,
        "max_frames": c.max_frames,
        "head_hidden": c.head_hidden,
    }
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"Aloe config: {name} must be a positive int, got {value!r}")
    if c.question_vocab_size < 2:
        raise ConfigError(
            f"Aloe config: question_vocab_size must be >= 2 (0 is padding), got {c.question_vocab_size}"
        )
    if c.width % c.num_heads:
        raise ConfigError(f"Aloe config: width={c.width} is not divisible by num_heads={c.num_heads}")
    if not c.mlp_ratio > 0:
        raise ConfigError(f"Aloe config: mlp_ratio must be > 0, got {c.mlp_ratio}")
    if not (0.0 <= c.dropout < 1.0 and 0.0 <= c.attn_drop < 1.0):
        raise ConfigError(
            f"Aloe config: dropout and attn_drop must lie in [0, 1), got {c.dropout}, {c.attn_drop}"
        )
    if not 0.0 <= c.mask_ratio <= 1.0:
        raise ConfigError(f"Aloe config: mask_ratio must lie in [0, 1], got {c.mask_ratio}")


# ---------------------------------------------------------------- output


@dataclass
class AloeOutput:
    """Logits of the task that ran (descriptive without choices, multiple choice with) and the
    masked-object predictions when objects were masked (N masked tokens over all runs)."""

    answer_logits: torch.Tensor | None  # (B, A) descriptive answer logits
    choice_logits: torch.Tensor | None  # (B, C) one true/false logit per choice
    choice_mask: torch.Tensor | None  # (B, C) bool, True for a choice with at least one word
    object_mask: torch.Tensor | None  # (B, T, K) bool, True where the mask embedding replaced the object
    masked_predictions: torch.Tensor | None  # (N, D_obj): N = runs (1 or C) * object_mask.sum()
    masked_index: torch.Tensor | None  # (N,) int64: the target's row in object_targets.flatten(0, 2)
    object_targets: torch.Tensor | None  # (B, T, K, D_obj) the objects as given (the candidates)

    @property
    def masked_targets(self) -> torch.Tensor | None:
        """(N, D_obj) the inputs the masked predictions should match."""
        if self.object_targets is None or self.masked_index is None:
            return None
        return self.object_targets.flatten(0, 2)[self.masked_index]


# ---------------------------------------------------------------- input preparation


def frame_indices(
    num_available: int,
    *,
    stride: int | None = None,
    num_frames: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices (int64) of the frames to keep out of ``num_available``: ``num_frames`` at ``stride``.

    ``stride`` alone keeps ``num_available // stride`` frames (every s-th); ``num_frames``
    alone uses stride ``num_available // num_frames`` (the reference's 25 of 128 at
    stride 5). The first index is 0, or, with ``generator`` (training), uniform over the
    offsets that still fit, as the reference randomises its 25 frames; the count never
    depends on the offset, so clips collate.
    """
    if stride is None and num_frames is None:
        raise InputError("frame_indices needs stride, num_frames or both")
    if stride is not None and not 1 <= stride <= num_available:
        raise InputError(f"stride must lie in [1, {num_available}] (frames available), got {stride}")
    if num_frames is not None and not 1 <= num_frames <= num_available:
        raise InputError(f"num_frames must lie in [1, {num_available}] (frames available), got {num_frames}")
    if stride is None:
        stride = num_available // num_frames  # type: ignore[operator]
    if num_frames is None:
        num_frames = num_available // stride
    span = (num_frames - 1) * stride + 1
    if span > num_available:
        raise InputError(
            f"{num_frames} frames at stride {stride} span {span} frames, only {num_available} exist"
        )
    offset = 0
    if generator is not None and span < num_available:
        offset = int(torch.randint(num_available - span + 1, (1,), generator=generator))
    return offset + stride * torch.arange(num_frames)


def subsample_frames(
    x: torch.Tensor,
    *,
    stride: int | None = None,
    num_frames: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x`` (B, T, ...) with only the frames of :func:`frame_indices` (apply the same
    indices to aligned tensors, e.g. masks, with ``frame_indices`` and ``index_select``)."""
    if x.dim() < 2:
        raise InputError(f"x must be (B, T, ...), got shape {tuple(x.shape)}")
    keep = frame_indices(x.shape[1], stride=stride, num_frames=num_frames, generator=generator)
    return x.index_select(1, keep.to(x.device))


def shuffle_objects(
    objects: torch.Tensor, *, generator: torch.Generator, masks: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Independently permute the K objects of every (clip, frame); ``masks`` (B, T, K, ...)
    get the same permutation. ``generator`` must live on the tensors' device."""
    if objects.dim() != 4:
        raise InputError(f"objects must be (B, T, K, D), got shape {tuple(objects.shape)}")
    if masks is not None and masks.shape[:3] != objects.shape[:3]:
        raise InputError(
            f"masks {tuple(masks.shape)} do not match objects {tuple(objects.shape)} in (B, T, K)"
        )
    scores = torch.rand(objects.shape[:3], generator=generator, device=objects.device)  # (B, T, K)
    perm = scores.argsort(dim=-1)  # (B, T, K): out[b, t, k] = objects[b, t, perm[b, t, k]]
    out = objects.gather(2, perm[..., None].expand_as(objects))
    if masks is None:
        return out, None
    index = perm.view(*perm.shape, *([1] * (masks.dim() - 3))).expand_as(masks)
    return out, masks.gather(2, index)


def mask_summary(masks: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """Per-slot (centroid x, centroid y, area) of soft masks (B, T, K, H, W) or (B, T, K, 1, H, W).

    Coordinates are pixel centres in [0, 1] (x to the right, y down); area is the mean
    mask value. An empty mask has its centroid at the image centre.
    """
    if masks.dim() == 6 and masks.shape[3] == 1:
        masks = masks.squeeze(3)
    if masks.dim() != 5 or not masks.is_floating_point():
        raise InputError(
            f"masks must be floating (B, T, K, H, W) or (B, T, K, 1, H, W), "
            f"got {masks.dtype} {tuple(masks.shape)}"
        )
    H, W = masks.shape[-2:]
    ys = (torch.arange(H, device=masks.device, dtype=masks.dtype) + 0.5) / H  # (H,)
    xs = (torch.arange(W, device=masks.device, dtype=masks.dtype) + 0.5) / W  # (W,)
    mass = masks.sum(dim=(-2, -1))  # (B, T, K)
    cx = ((masks.sum(dim=-2) * xs).sum(-1) + 0.5 * eps) / (mass + eps)
    cy = ((masks.sum(dim=-1) * ys).sum(-1) + 0.5 * eps) / (mass + eps)
    return torch.stack([cx, cy, mass / (H * W)], dim=-1)  # (B, T, K, 3)


def append_mask_summary(objects: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B, T, K, D) objects -> (B, T, K, D + 3) with :func:`mask_summary` appended."""
    summary = mask_summary(masks)
    if objects.dim() != 4 or summary.shape[:3] != objects.shape[:3]:
        raise InputError(f"objects {tuple(objects.shape)} and masks {tuple(masks.shape)} differ in (B, T, K)")
    return torch.cat([objects, summary.to(objects.dtype)], dim=-1)


def sample_object_mask(
    batch: int,
    frames: int,
    slots: int,
    ratio: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """(B, T, K) bool with exactly ``max(1, round(ratio * K))`` True per frame (none if ratio is 0)."""
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"mask ratio must lie in [0, 1], got {ratio}")
    count = 0 if ratio == 0 else min(slots, max(1, round(ratio * slots)))
    scores = torch.rand(batch, frames, slots, generator=generator, device=device)
    ranks = scores.argsort(dim=-1).argsort(dim=-1)  # (B, T, K) rank of each slot's score
    return ranks < count


# ---------------------------------------------------------------- model


class AloeModel(nn.Module):
    """What the video-qa task trains: Aloe, alone or inside a model that makes its tokens.

    ``input_kind``: the batch key ``forward``'s first argument comes from ("objects" or
    "video"); ``aloe_core``: the :class:`Aloe` inside (its sizes are checked against the data);
    ``image_size``: the frame size a video model reads (None for object tokens).
    """

    input_kind: ClassVar[str] = "objects"

    @property
    def image_size(self) -> int | None:
        return None

    @property
    def aloe_core(self) -> Aloe:
        raise NotImplementedError


@register_model(
    "aloe",
    config=AloeConfig(),
)
@register_model(
    "aloe-paper",
    config=AloeConfig(width=180, depth=28, num_heads=10, mlp_ratio=1024 / 180),
)
class Aloe(AloeModel):
    """objects (B, T, K, D_obj), question (B, L) int64 [, choices (B, C, Lc) int64] -> :class:`AloeOutput`."""

    input_kind = "objects"

    @property
    def aloe_core(self) -> Aloe:
        return self

    def __init__(self, config: AloeConfig) -> None:
        super().__init__()
        check_config(config)
        self.config = c = config
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width))
        self.word_embed = nn.Embedding(c.question_vocab_size, c.width, padding_idx=PAD)
        self.word_pos = nn.Parameter(torch.zeros(max(c.max_question_len, c.max_choice_len), c.width))
        self.type_embed = nn.Embedding(3, c.width)  # QUESTION, CHOICE, OBJECT
        self.object_proj = nn.Linear(c.object_dim, c.width)
        self.frame_embed = nn.Parameter(torch.zeros(c.max_frames, c.width))
        self.mask_token = nn.Parameter(torch.zeros(c.width))
        self.blocks = nn.ModuleList(
            TransformerBlock(
                c.width,
                num_heads=c.num_heads,
                mlp_ratio=c.mlp_ratio,
                attn_drop=c.attn_drop,
                proj_drop=c.dropout,
                act_layer=nn.ReLU,
            )
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.width)
        # outputs [:A] answer the descriptive question, [A] is the choice's true/false logit
        self.head = nn.Sequential(
            nn.Linear(c.width, c.head_hidden), nn.ReLU(), nn.Linear(c.head_hidden, c.answer_vocab_size + 1)
        )
        self.object_predictor = nn.Linear(c.width, c.object_dim)
        self.token_scale = FeatureScale(c.object_dim) if c.standardize else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.cls_token, self.word_pos, self.frame_embed, self.mask_token):
            nn.init.trunc_normal_(p, std=0.02)
        for emb in (self.word_embed, self.type_embed):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.word_embed.weight[PAD].zero_()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Small valid multiple-choice inputs: 2 choices, 3 frames of 3 objects, trailing padding."""
        c = self.config
        q_len, c_len = min(8, c.max_question_len), min(4, c.max_choice_len)
        question = torch.randint(1, c.question_vocab_size, (batch_size, q_len))
        question[:, q_len // 2 + 1 :] = PAD
        choices = torch.randint(1, c.question_vocab_size, (batch_size, 2, c_len))
        choices[:, :, c_len // 2 + 1 :] = PAD
        return {
            "objects": torch.randn(batch_size, min(3, c.max_frames), 3, c.object_dim),
            "question": question,
            "choices": choices,
        }

    # -- checks ------------------------------------------------------------
    def _check_words(self, name: str, words: torch.Tensor, shape: str, rank: int, max_len: int) -> None:
        if words.dim() != rank or words.dtype != torch.long:
            raise InputError(f"{name} must be int64 {shape}, got {words.dtype} {tuple(words.shape)}")
        if not 1 <= words.shape[-1] <= max_len:
            raise InputError(f"{name} length {words.shape[-1]} must lie in [1, {max_len}]")
        low, high = (int(words.min()), int(words.max())) if words.numel() else (0, 0)
        if low < 0 or high >= self.config.question_vocab_size:
            raise InputError(
                f"{name} ids must lie in [0, {self.config.question_vocab_size}) (0 = padding), "
                f"got [{low}, {high}]"
            )

    def _check(
        self,
        objects: torch.Tensor,
        question: torch.Tensor,
        choices: torch.Tensor | None,
        object_mask: torch.Tensor | None,
    ) -> None:
        c = self.config
        if objects.dim() != 4 or objects.shape[-1] != c.object_dim or not objects.is_floating_point():
            raise InputError(
                f"objects must be floating (B, T, K, {c.object_dim}), "
                f"got {objects.dtype} {tuple(objects.shape)}"
            )
        B, T, K, _ = objects.shape
        if min(B, T, K) < 1:
            raise InputError(f"objects must be non-empty, got shape {tuple(objects.shape)}")
        if objects.shape[1] > c.max_frames:
            raise InputError(
                f"objects have {T} frames, more than max_frames={c.max_frames} (sub-sample them)"
            )
        if not torch.isfinite(objects).all():
            raise InputError("objects contain NaN or inf")
        self._check_words("question", question, "(B, L)", 2, c.max_question_len)
        if question.shape[0] != B:
            raise InputError(f"question has batch {question.shape[0]}, objects have {B}")
        if choices is not None:
            self._check_words("choices", choices, "(B, C, Lc)", 3, c.max_choice_len)
            if choices.shape[0] != B or choices.shape[1] < 1:
                raise InputError(f"choices must be ({B}, C >= 1, Lc), got {tuple(choices.shape)}")
        if object_mask is not None and (object_mask.dtype != torch.bool or object_mask.shape != (B, T, K)):
            raise InputError(
                f"object_mask must be bool ({B}, {T}, {K}), "
                f"got {object_mask.dtype} {tuple(object_mask.shape)}"
            )

    # -- embedding ---------------------------------------------------------
    def _embed_words(self, words: torch.Tensor, token_type: int) -> torch.Tensor:
        L = words.shape[-1]
        return self.word_embed(words) + self.word_pos[:L] + self.type_embed.weight[token_type]  # (..., L, W)

    def _embed_objects(self, objects: torch.Tensor, object_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.object_proj(objects)  # (B, T, K, W)
        if object_mask is not None:
            x = torch.where(object_mask[..., None], self.mask_token.to(x.dtype), x)
        T = objects.shape[1]
        x = x + self.frame_embed[:T, None] + self.type_embed.weight[OBJECT]  # no slot-order embedding
        return x.flatten(1, 2)  # (B, T * K, W)

    def _object_mask(
        self,
        objects: torch.Tensor,
        object_mask: torch.Tensor | None,
        mask_ratio: float | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor | None:
        if object_mask is not None:
            return object_mask if bool(object_mask.any()) else None
        ratio = (self.config.mask_ratio if self.training else 0.0) if mask_ratio is None else mask_ratio
        if ratio == 0:
            return None
        B, T, K, _ = objects.shape
        return sample_object_mask(B, T, K, ratio, generator=generator, device=objects.device)

    # -- forward -----------------------------------------------------------
    def forward(
        self,
        objects: torch.Tensor,
        question: torch.Tensor,
        *,
        choices: torch.Tensor | None = None,
        object_mask: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        generator: torch.Generator | None = None,
    ) -> AloeOutput:
        """Answer ``question`` about ``objects``; with ``choices``, score every choice.

        Objects are masked for the auxiliary loss by ``object_mask`` (B, T, K) bool if
        given, else by a sample with ``mask_ratio`` (default: the config's in training,
        0 in eval) drawn from ``generator`` (which must live on ``objects``' device).
        """
        self._check(objects, question, choices, object_mask)
        if self.token_scale is not None:
            objects = self.token_scale(objects)  # the masked-object targets are the scaled tokens too
        object_mask = self._object_mask(objects, object_mask, mask_ratio, generator)
        B, T, K, _ = objects.shape
        obj = self._embed_objects(objects, object_mask)  # (B, T * K, W)
        words = self._embed_words(question, QUESTION)  # (B, L, W)
        pad = question == PAD  # (B, L)
        runs = 1
        if choices is not None:  # one sequence per (clip, choice), row b * C + c
            runs = choices.shape[1]
            choice_words = self._embed_words(choices.flatten(0, 1), CHOICE)  # (B * C, Lc, W)
            words = torch.cat([words.repeat_interleave(runs, 0), choice_words], dim=1)  # (B * C, L + Lc, W)
            pad = torch.cat([pad.repeat_interleave(runs, 0), choices.flatten(0, 1) == PAD], dim=1)
            obj = obj.repeat_interleave(runs, 0)  # (B * C, T * K, W)
        S = words.shape[0]
        x = torch.cat([self.cls_token.expand(S, -1, -1), words, obj], dim=1)  # (S, 1 + Lw + T * K, W)
        key_padding_mask = torch.cat([pad.new_zeros(S, 1), pad, pad.new_zeros(S, T * K)], dim=1)
        for block in self.blocks:
            x = block(x, key_padding_mask=key_padding_mask)
        x = self.norm(x)
        logits = self.head(x[:, 0])  # (S, A + 1)
        A = self.config.answer_vocab_size
        out = AloeOutput(
            answer_logits=logits[:, :A] if choices is None else None,
            choice_logits=logits[:, A].view(B, runs) if choices is not None else None,
            choice_mask=(choices != PAD).any(-1) if choices is not None else None,
            object_mask=object_mask,
            masked_predictions=None,
            masked_index=None,
            object_targets=None,
        )
        if object_mask is not None:
            obj_out = x[:, -T * K :].view(B, runs, T, K, -1)  # (B, R, T, K, W)
            selected = object_mask[:, None].expand(B, runs, T, K)
            index = torch.arange(B * T * K, device=objects.device).view(B, 1, T, K).expand(B, runs, T, K)
            out.masked_predictions = self.object_predictor(obj_out[selected])  # (N, D_obj)
            out.masked_index = index[selected]  # (N,)
            out.object_targets = objects
        return out
