"""Distillation from two teachers: output KD and attention KD (seed 004, the distillation thesis).

Teacher 1 is the contrastive one (DINO, "CL"), teacher 2 the masked-image-modelling one (MAE, "MIM").

**Output KD** (Hinton et al. 2015, arXiv:1503.02531; the thesis's Eq. 1)::

    L_KD = λ1 KL(p_T1 || p_S) + (1 − λ1) KL(p_T2 || p_S),   λ1 = 0.5

with p = softmax(z / T), the KL summed over classes and averaged over the batch. The thesis writes
the KL of the models' output distributions "as in ordinary KD" and names no temperature, so
T = 1 is the default; for T != 1 each KL is multiplied by T² (Hinton et al.: keeps the gradients'
scale as T changes; ``temperature_squared``, a no-op at T = 1).

**Attention KD** (Eq. 3)::

    L_Attn = λ2 KL(A_T1 || A_S,1) + (1 − λ2) KL(A_T2 || A_S,2),   λ2 = 0

- A_T is one head of a teacher's attention: the head with the highest Attention Confidence
  (Voita et al. 2019, arXiv:1905.09418; the thesis's Eq. 2) ``C_h = mean_q max_k A_h(q, k)``,
  computed on the batch at hand and averaged over its images, unless ``teacher_heads`` fixes it.
- A_S,1 and A_S,2 are "the student's first and second attention weights": here heads 0 and 1 of
  the student layer (``student_heads``).
- Which layer: the thesis does not say. We default to each model's last attention layer, where
  its Figure 1 shows the teachers differ most and the block its Partial-1 adaptation retrains;
  ``teacher_layers`` and ``student_layer`` name others (:func:`layer_attention`).
- The KL is over keys for each query (summed over keys), averaged over queries and images.
  Teachers' maps and logits are detached: gradients reach only the student. With λ2 = 0, as in
  the thesis, only the MIM teacher's map is transferred, and teacher 1's attention is not needed.
- Prefix tokens (CLS): the maps are transferred whole, CLS row and column included, since the
  thesis transfers the attention weights as the models compute them; teachers and student must
  have the same number of prefix tokens. Attention Confidence is taken over all queries and keys
  by default (Eq. 2's Q and K are the model's tokens); ``confidence_excludes_prefix`` drops prefix
  tokens as queries and keys (rows not renormalised), as Voita et al. left out the EOS token that
  idle heads attend to.
- A teacher whose patch grid differs from the student's is an error unless ``interpolation`` is
  ``"bilinear"``: the teacher's map is then resampled to the student's grid by
  :func:`resample_attention` (keys, then queries; prefix rows and columns kept; rows still sum to 1).

The cross-entropy terms of the thesis's Eq. 4 (student and both teachers' heads) belong to the task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.objectives.terms import Terms, weighted_sum

Grid = tuple[int, int]
Interpolation = Literal["none", "bilinear"]
INTERPOLATIONS = ("none", "bilinear")


@dataclass(frozen=True)
class DistillConfig:
    """Weights and choices of the two-teacher distillation (defaults: the thesis)."""

    lambda1: float = 0.5  # output KD: weight of teacher 1 (CL); teacher 2 (MIM) gets 1 - lambda1
    lambda2: float = 0.0  # attention KD: weight of teacher 1; teacher 2 gets 1 - lambda2
    kd_weight: float = 1.0  # multiplies L_KD (Eq. 4 adds it with weight 1; 0: the no-KD baseline)
    attention_weight: float = 1.0  # multiplies L_Attn (Eq. 4 adds it with weight 1; 0 turns it off)
    temperature: float = 1.0  # softmax temperature of output KD; the thesis names none
    temperature_squared: bool = True  # multiply each output-KD KL by T² (Hinton et al.)
    teacher_heads: tuple[int | None, int | None] = (None, None)  # None: highest confidence per batch
    student_heads: tuple[int, int] = (0, 1)  # A_S,1 and A_S,2
    teacher_layers: tuple[str | None, str | None] = (None, None)  # None: the last attention layer
    student_layer: str | None = None  # None: the last attention layer
    num_prefix_tokens: int = 1  # CLS (and any other prefix tokens) before the patches, all models
    confidence_excludes_prefix: bool = False  # Attention Confidence over patch queries and keys only
    interpolation: Interpolation = "none"  # teacher grid != student grid: "none" is an error
    teacher_names: tuple[str, str] = ("teacher1", "teacher2")  # in the terms' names: kd_<name>

    def __post_init__(self) -> None:
        for name in ("lambda1", "lambda2"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"distill {name} must be in [0, 1], got {value}")
        for name in ("kd_weight", "attention_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"distill {name} must be >= 0, got {getattr(self, name)}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"distill temperature must be a positive number, got {self.temperature}")
        if any(h is not None and h < 0 for h in (*self.teacher_heads, *self.student_heads)):
            raise ConfigError(
                f"distill head indices must be >= 0, got teacher_heads={self.teacher_heads}, "
                f"student_heads={self.student_heads}"
            )
        if self.student_heads[0] == self.student_heads[1]:
            raise ConfigError(f"distill student_heads must be two different heads, got {self.student_heads}")
        if self.num_prefix_tokens < 0:
            raise ConfigError(f"distill num_prefix_tokens must be >= 0, got {self.num_prefix_tokens}")
        if self.interpolation not in INTERPOLATIONS:
            raise unknown("distill interpolation", self.interpolation, INTERPOLATIONS)
        if self.teacher_names[0] == self.teacher_names[1]:
            raise ConfigError(f"distill teacher_names must differ, got {self.teacher_names}")

    @property
    def kd_weights(self) -> tuple[float, float]:
        """The weights of the two output KLs in the total: kd_weight * (λ1, 1 − λ1)."""
        return self.kd_weight * self.lambda1, self.kd_weight * (1.0 - self.lambda1)

    @property
    def attention_weights(self) -> tuple[float, float]:
        """The weights of the two attention KLs in the total: attention_weight * (λ2, 1 − λ2)."""
        return self.attention_weight * self.lambda2, self.attention_weight * (1.0 - self.lambda2)


# ---- output KD -------------------------------------------------------------------------------


def output_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    temperature_squared: bool = True,
) -> torch.Tensor:
    """() KL(softmax(t / T) || softmax(s / T)) over the last dim, mean over the rest (times T²)."""
    if student_logits.shape != teacher_logits.shape or student_logits.dim() < 2:
        raise InputError(
            f"student and teacher logits must have the same shape (B, C), "
            f"got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    log_s = F.log_softmax(student_logits / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.detach().to(log_s.dtype) / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1).mean()
    return kl * temperature**2 if temperature_squared else kl


# ---- Attention Confidence ----------------------------------------------------------------------


def _check_maps(attn: torch.Tensor, what: str) -> None:
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise InputError(f"{what} must be self-attention weights (B, H, N, N), got {tuple(attn.shape)}")


def attention_confidence(
    attn: torch.Tensor, *, num_prefix_tokens: int = 0, exclude_prefix: bool = False
) -> torch.Tensor:
    """(H,) ``C_h = mean over queries of max over keys of A_h(q, k)``, averaged over the batch.

    ``exclude_prefix`` drops the first ``num_prefix_tokens`` tokens as queries and keys."""
    _check_maps(attn, "attention")
    if exclude_prefix:
        attn = attn[..., num_prefix_tokens:, num_prefix_tokens:]  # (B, H, N - p, N - p)
    return attn.detach().amax(dim=-1).mean(dim=(0, 2))  # (B, H, Q) -> (H,)


def select_head(attn: torch.Tensor, *, num_prefix_tokens: int = 0, exclude_prefix: bool = False) -> int:
    """The head with the highest Attention Confidence (the first of equals)."""
    confidence = attention_confidence(
        attn, num_prefix_tokens=num_prefix_tokens, exclude_prefix=exclude_prefix
    )
    return int(torch.argmax(confidence))


# ---- attention KD ------------------------------------------------------------------------------


def attention_kl(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """() KL(A_T(q, .) || A_S(q, .)) over keys, mean over queries and images; maps (..., N, N).

    The teacher is detached; a zero teacher weight contributes 0, a zero student weight is
    read as the smallest positive number of its dtype (a finite, large penalty)."""
    if teacher.shape != student.shape:
        raise InputError(
            f"teacher and student attention must have the same shape, "
            f"got {tuple(teacher.shape)} and {tuple(student.shape)}"
        )
    t = teacher.detach().to(student.dtype)
    log_s = student.clamp_min(torch.finfo(student.dtype).tiny).log()
    return (torch.xlogy(t, t) - t * log_s).sum(-1).mean()


def _grid_of(tokens: int, prefix: int, grid: Grid | None, what: str) -> Grid:
    patches = tokens - prefix
    if grid is None:
        side = math.isqrt(max(patches, 0))
        if patches <= 0 or side * side != patches:
            raise InputError(
                f"{what} has {tokens} tokens, {patches} after {prefix} prefix token(s): "
                f"not a square grid; pass its grid (h, w)"
            )
        return side, side
    if grid[0] * grid[1] != patches:
        raise InputError(
            f"{what} has {tokens} tokens but a {grid[0]}x{grid[1]} grid with {prefix} prefix "
            f"token(s) has {prefix + grid[0] * grid[1]}"
        )
    return grid


def resample_attention(
    maps: torch.Tensor, from_grid: Grid, to_grid: Grid, *, num_prefix_tokens: int
) -> torch.Tensor:
    """(..., N, N) attention over a ``from_grid`` of patches -> (..., N', N') over ``to_grid``.

    Keys first: each row's patch part is an image over the key grid, resampled bilinearly
    (``align_corners=False``, no antialiasing) and rescaled to its former patch mass, so the weight
    on prefix keys is kept. Then queries: each key's column over the query patches is resampled
    the same way; bilinear weights are convex, so every row still sums to what it summed to.
    Prefix rows (CLS as a query) are resampled over keys only, the prefix columns over queries only."""
    p = num_prefix_tokens
    (h, w), (h2, w2) = from_grid, to_grid
    n, n2 = p + h * w, p + h2 * w2
    if maps.dim() < 2 or maps.shape[-2:] != (n, n):
        raise InputError(
            f"attention must be (..., {n}, {n}) for a {h}x{w} grid with {p} prefix token(s), "
            f"got {tuple(maps.shape)}"
        )
    lead = maps.shape[:-2]
    x = maps.reshape(-1, n, n)  # (L, N, N)
    count = x.shape[0]
    keys = x[..., p:].reshape(count * n, 1, h, w)  # each row's patch keys as an image
    resized = F.interpolate(keys, size=(h2, w2), mode="bilinear", align_corners=False)
    resized = resized.reshape(count, n, h2 * w2)  # (L, N, h2*w2)
    mass = x[..., p:].sum(-1, keepdim=True)  # (L, N, 1)
    resized = resized * (mass / resized.sum(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny))
    x = torch.cat([x[..., :p], resized], dim=-1)  # (L, N, N')
    queries = x[:, p:, :].transpose(1, 2).reshape(count * n2, 1, h, w)  # each key's column as an image
    rows = F.interpolate(queries, size=(h2, w2), mode="bilinear", align_corners=False)
    rows = rows.reshape(count, n2, h2 * w2).transpose(1, 2)  # (L, h2*w2, N')
    x = torch.cat([x[:, :p, :], rows], dim=1)  # (L, N', N')
    return x.reshape(*lead, n2, n2)


def _head(attn: torch.Tensor, head: int, what: str) -> torch.Tensor:
    heads = attn.shape[1]
    if not 0 <= head < heads:
        raise InputError(f"{what} head {head} is out of range: its layer has {heads} heads (0..{heads - 1})")
    return attn[:, head]  # (B, N, N)


def layer_attention(record: Mapping[str, torch.Tensor], layer: str | None, what: str) -> torch.Tensor:
    """The (B, H, N, N) weights of ``layer`` in a capture record; None: its last layer."""
    names = list(record)
    if not names:
        raise InputError(f"{what}'s attention record is empty: run it inside the capture block")
    if layer is None:
        return record[names[-1]]
    if layer not in names:  # a list: AttentionRecord.__contains__ raises for unknown names
        raise unknown(f"{what} attention layer", layer, names)
    return record[layer]


# ---- the loss ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistillLoss:
    """Unweighted KLs and the weights ``terms()`` applies."""

    kd: tuple[torch.Tensor, torch.Tensor]  # () KL(p_T1 || p_S), KL(p_T2 || p_S), times T² if configured
    attention: tuple[torch.Tensor | None, torch.Tensor | None]  # () KL(A_T || A_S); None: weight 0
    teacher_heads: tuple[int | None, int | None]  # the teachers' heads transferred (None: not used)
    config: DistillConfig

    def terms(self) -> Terms:
        """Named, weighted: kd_<teacher> (kd_weight · (λ1, 1 − λ1)) and attn_<teacher> (λ2, 1 − λ2)."""
        c = self.config
        terms: Terms = {}
        for name, weight, kd in zip(c.teacher_names, c.kd_weights, self.kd, strict=True):
            terms[f"kd_{name}"] = weight * kd
        for name, weight, attn in zip(c.teacher_names, c.attention_weights, self.attention, strict=True):
            if attn is not None:
                terms[f"attn_{name}"] = weight * attn
        return terms

    def total(self) -> torch.Tensor:
        return weighted_sum(self.terms())


def _transfer(
    config: DistillConfig,
    teacher: torch.Tensor,
    student: torch.Tensor,
    *,
    index: int,
    teacher_grid: Grid | None,
    student_grid: Grid | None,
) -> tuple[torch.Tensor, int]:
    """KL from teacher ``index``'s chosen head to its student head, and the head it chose."""
    name = config.teacher_names[index]
    _check_maps(teacher, f"{name}'s attention")
    if teacher.shape[0] != student.shape[0]:
        raise InputError(
            f"{name}'s attention has {teacher.shape[0]} images, the student's {student.shape[0]}"
        )
    p = config.num_prefix_tokens
    fixed = config.teacher_heads[index]
    head = (
        fixed
        if fixed is not None
        else select_head(teacher, num_prefix_tokens=p, exclude_prefix=config.confidence_excludes_prefix)
    )
    target = _head(teacher, head, name)  # (B, N_T, N_T)
    source = _grid_of(teacher.shape[-1], p, teacher_grid, f"{name}'s attention")
    goal = _grid_of(student.shape[-1], p, student_grid, "the student's attention")
    if source != goal:
        if config.interpolation == "none":
            raise InputError(
                f"{name}'s token grid {source[0]}x{source[1]} differs from the student's "
                f"{goal[0]}x{goal[1]}; set interpolation='bilinear' to resample the teacher's attention"
            )
        target = resample_attention(target.detach(), source, goal, num_prefix_tokens=p)
    student_head = _head(student, config.student_heads[index], "student")
    return attention_kl(target, student_head), head


def distill_loss(
    config: DistillConfig,
    student_logits: torch.Tensor,
    teacher_logits: tuple[torch.Tensor, torch.Tensor],
    *,
    student_attention: torch.Tensor | None = None,
    teacher_attention: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
    student_grid: Grid | None = None,
    teacher_grids: tuple[Grid | None, Grid | None] = (None, None),
) -> DistillLoss:
    """L_KD and L_Attn from logits (B, C) and one attention layer per model (B, H, N, N).

    The student's attention must carry gradients (``capture(student, differentiable=True)``);
    a teacher's attention is needed only when its attention weight is not 0. Grids: (h, w) of
    each model's patches; None means square."""
    kd = tuple(
        output_kl(
            student_logits,
            t,
            temperature=config.temperature,
            temperature_squared=config.temperature_squared,
        )
        for t in teacher_logits
    )
    attention: list[torch.Tensor | None] = [None, None]
    heads: list[int | None] = [None, None]
    for i, weight in enumerate(config.attention_weights):
        if weight == 0:
            continue
        teacher = teacher_attention[i]
        if teacher is None or student_attention is None:
            raise InputError(
                f"attention KD from {config.teacher_names[i]} has weight {weight:g} but "
                f"{'the student' if student_attention is None else config.teacher_names[i]}'s attention "
                f"is missing; pass it or set lambda2/attention_weight so that its weight is 0"
            )
        _check_maps(student_attention, "the student's attention")
        if torch.is_grad_enabled() and not student_attention.requires_grad:
            raise InputError(
                "the student's attention carries no gradient: "
                "capture it with capture(student, differentiable=True)"
            )
        attention[i], heads[i] = _transfer(
            config,
            teacher,
            student_attention,
            index=i,
            teacher_grid=teacher_grids[i],
            student_grid=student_grid,
        )
    return DistillLoss(
        kd=(kd[0], kd[1]),
        attention=(attention[0], attention[1]),
        teacher_heads=(heads[0], heads[1]),
        config=config,
    )
