"""Video question answering with Aloe (Ding et al., NeurIPS 2021, arXiv:2012.08508): the ``video-qa`` task.

Batches come from the ``clevrer-qa`` datamodule (:mod:`attnlab.data.clevrer_qa`):
``objects`` (B, T, K, D) or ``video`` (B, T, 3, S, S), ``question`` (B, L),
``answer`` (B,), ``choices`` (B, C, Lc), ``choice_labels`` (B, C), ``question_type`` (B,).
The model is ``aloe`` (object tokens: oracle features or an object-centric run's
latents), ``aloe-frames`` (the frame-CNN baseline) or ``aloe-slots`` (an
object-centric encoder trained end to end); the last two read the video.

A batch mixes descriptive and multiple-choice questions: the model runs once on the
descriptive rows (answer logits) and once on the multiple-choice rows (one logit per
choice), each trimmed of trailing padding words and choices. The loss is
:func:`attnlab.objectives.aloe.aloe_loss_terms` of both: ``answer`` (the descriptive
rows' mean cross-entropy) + ``choice`` (the mean binary cross-entropy over the real
choices) + ``masked_object`` (the two runs' terms, weighted by their rows).

Metrics, counted over the whole split (not averaged per batch):

- ``acc``: questions answered right, a multiple-choice question counting as right when
  every one of its options is; ``acc/<type>`` per question type (descriptive,
  explanatory, predictive, counterfactual): for descriptive questions this is the
  answer accuracy, for the others the per-question accuracy;
- ``question_acc``: per-question accuracy over all multiple-choice questions;
- ``option_acc``, ``option_acc/<type>``: per-option accuracy of multiple choice (an
  option is right when its logit has the sign of its label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

from attnlab.data.clevrer_lite.questions import QUESTION_TYPES
from attnlab.data.clevrer_qa import ClevrerQAData
from attnlab.errors import ConfigError
from attnlab.models.video_qa.aloe import Aloe, AloeModel, AloeOutput
from attnlab.objectives.aloe import aloe_loss_terms
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import OptimConfig
from attnlab.train.registry import register_task
from attnlab.train.task import Batch, Task

MC_TYPES = QUESTION_TYPES[1:]
METRICS = (
    "acc",
    *(f"acc/{t}" for t in QUESTION_TYPES),
    "question_acc",
    "option_acc",
    *(f"option_acc/{t}" for t in MC_TYPES),
)


# ---------------------------------------------------------------- metrics


def qa_counts(
    question_type: torch.Tensor,
    answers: torch.Tensor,
    choice_labels: torch.Tensor,
    answer_logits: torch.Tensor | None,
    choice_logits: torch.Tensor | None,
    choice_mask: torch.Tensor | None,
) -> torch.Tensor:
    """(len(METRICS), 2) float: [right, total] per metric of :data:`METRICS`.

    ``answer_logits`` (Nd, A) are for the descriptive rows (``question_type == 0``) in
    order, ``choice_logits`` and ``choice_mask`` (Nm, C') for the others; ``answers``
    (B,) and ``choice_labels`` (B, C >= C') are the whole batch's.
    """
    desc = question_type == 0
    right = torch.zeros_like(desc)  # (B,) the question is answered right
    counts = torch.zeros(len(METRICS), 2, device=question_type.device)
    if answer_logits is not None:
        right[desc] = answer_logits.argmax(-1) == answers[desc]
    if choice_logits is not None and choice_mask is not None:
        labels = choice_labels[~desc, : choice_logits.shape[1]] > 0.5  # (Nm, C')
        option_right = ((choice_logits > 0) == labels) & choice_mask  # (Nm, C')
        right[~desc] = (option_right | ~choice_mask).all(-1)
        mc_types = question_type[~desc]
        for name, rows in [("option_acc", torch.ones_like(mc_types, dtype=torch.bool))] + [
            (f"option_acc/{t}", mc_types == QUESTION_TYPES.index(t)) for t in MC_TYPES
        ]:
            i = METRICS.index(name)
            counts[i, 0] = option_right[rows].sum()
            counts[i, 1] = choice_mask[rows].sum()
    for name, rows in [("acc", torch.ones_like(desc)), ("question_acc", ~desc)] + [
        (f"acc/{t}", question_type == i) for i, t in enumerate(QUESTION_TYPES)
    ]:
        counts[METRICS.index(name)] = torch.stack([right[rows].sum(), rows.sum()]).to(counts.dtype)
    return counts


def accuracies(counts: torch.Tensor) -> dict[str, float]:
    """Metric -> right / total, for the metrics with a total (see :data:`METRICS`)."""
    return {name: float(c[0] / c[1]) for name, c in zip(METRICS, counts, strict=True) if c[1] > 0}


def plot_accuracies(acc: dict[str, float], path: Path, counts: dict[str, int] | None = None) -> Path:
    """Bars per question type: the per-question accuracy and, for multiple choice, the per-option one;
    ``counts`` (questions per type) label the types."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    xs = torch.arange(len(QUESTION_TYPES)).float()
    for offset, prefix, label in ((-0.2, "acc", "per question"), (0.2, "option_acc", "per option")):
        values = [acc.get(f"{prefix}/{t}", float("nan")) for t in QUESTION_TYPES]
        bars = ax.bar((xs + offset).tolist(), values, width=0.4, label=label)
        ax.bar_label(bars, labels=[f"{v:.2f}" if v == v else "" for v in values], fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    counts = counts or {}
    ax.set_xticks(xs.tolist(), [f"{t}\n({counts.get(t, '?')} questions)" for t in QUESTION_TYPES])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title(
        f"test accuracy (all questions: {acc.get('acc', float('nan')):.3f}); dashed: 0.5", fontsize=9
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# ---------------------------------------------------------------- task


def _trim(words: torch.Tensor) -> torch.Tensor:
    """Drop the trailing word positions that are padding in every row (at least one stays)."""
    used = (words != 0).flatten(0, -2).any(0)  # (L,)
    length = int(used.nonzero().max()) + 1 if used.any() else 1
    return words[..., :length]


def _trim_choices(choices: torch.Tensor) -> torch.Tensor:
    """(N, C, Lc) without the trailing choices that are padding in every row, then without padding words."""
    real = (choices != 0).any(-1).any(0)  # (C,)
    count = int(real.nonzero().max()) + 1 if real.any() else 1
    return _trim(choices[:, :count])


def _aloe_model(model: nn.Module) -> AloeModel:
    if not isinstance(model, AloeModel):
        raise ConfigError(
            f"the video-qa task trains Aloe models (aloe, aloe-frames, aloe-slots), "
            f"not {type(model).__name__}"
        )
    return model


def _aloe_of(model: nn.Module) -> Aloe:
    return _aloe_model(model).aloe_core


@register_task("video-qa")
class VideoQATask(Task):
    """Video question answering: descriptive answers and multiple-choice options with Aloe."""

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, *, model: nn.Module, optim: OptimConfig, masked_object_weight: float = 0.01) -> None:
        super().__init__(model=model, optim=optim)
        if masked_object_weight < 0:
            raise ConfigError(f"task.masked_object_weight must be >= 0, got {masked_object_weight}")
        self.aloe_config = _aloe_of(model).config
        self.input_kind = _aloe_model(model).input_kind
        self.masked_object_weight = masked_object_weight
        self._counts: torch.Tensor | None = None
        self.test_accuracies: dict[str, float] = {}
        self.test_counts: dict[str, int] = {}  # questions per type

    # -- checks ----------------------------------------------------------------
    def setup(self, stage: str) -> None:
        check_data_fits_model(self.trainer.datamodule, self.model, self.input_kind)
        if stage == "fit":
            fit_token_scale(self.trainer.datamodule, self.model)

    # -- forward ---------------------------------------------------------------
    def outputs(self, batch: Batch) -> tuple[AloeOutput | None, AloeOutput | None]:
        """The model's outputs on the descriptive rows and on the multiple-choice rows."""
        x, question = batch[self.input_kind], batch["question"]
        desc = batch["question_type"] == 0
        outputs: list[AloeOutput | None] = []
        for rows, with_choices in ((desc, False), (~desc, True)):
            if not rows.any():
                outputs.append(None)
                continue
            choices = _trim_choices(batch["choices"][rows]) if with_choices else None
            outputs.append(self.model(x[rows], _trim(question[rows]), choices=choices))
        return outputs[0], outputs[1]

    def _terms(self, batch: Batch, desc: AloeOutput | None, mc: AloeOutput | None) -> dict[str, torch.Tensor]:
        is_desc = batch["question_type"] == 0
        terms: dict[str, torch.Tensor] = {}
        masked = []
        for out, rows in ((desc, is_desc), (mc, ~is_desc)):
            if out is None:
                continue
            part = aloe_loss_terms(
                out,
                answers=batch["answer"][rows] if out.answer_logits is not None else None,
                choice_labels=(
                    batch["choice_labels"][rows, : out.choice_logits.shape[1]]
                    if out.choice_logits is not None
                    else None
                ),
                masked_object_weight=self.masked_object_weight,
            )
            if "masked_object" in part:
                masked.append((part.pop("masked_object"), int(rows.sum())))
            terms |= part
        if masked:
            terms["masked_object"] = sum(t * n for t, n in masked) / sum(n for _, n in masked)
        return terms

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self._terms(batch, *self.outputs(batch))

    def _evaluate(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, counts) of one batch."""
        desc, mc = self.outputs(batch)
        loss = weighted_sum(self._terms(batch, desc, mc))
        counts = qa_counts(
            batch["question_type"],
            batch["answer"],
            batch["choice_labels"],
            None if desc is None else desc.answer_logits,
            None if mc is None else mc.choice_logits,
            None if mc is None else mc.choice_mask,
        )
        return loss, counts

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        loss, counts = self._evaluate(batch)
        return {"loss": loss} | {k: torch.tensor(v) for k, v in accuracies(counts).items()}

    # -- evaluation over a split -------------------------------------------------
    def _step(self, split: str, batch: Batch) -> None:
        loss, counts = self._evaluate(batch)
        self._counts = counts if self._counts is None else self._counts + counts
        self.log(f"{split}/loss", loss, batch_size=int(batch["question"].shape[0]), sync_dist=True)

    def _epoch_end(self, split: str) -> torch.Tensor | None:
        """Log the split's accuracies; return its counts (see :func:`qa_counts`)."""
        if self._counts is None:
            return None
        counts = self.trainer.strategy.reduce(self._counts, reduce_op="sum")  # exact over ranks
        self._counts = None
        for name, value in accuracies(counts).items():
            self.log(f"{split}/{name}", value)
        return counts

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step("test", batch)

    def on_validation_epoch_start(self) -> None:
        self._counts = None

    def on_test_epoch_start(self) -> None:
        self._counts = None

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        counts = self._epoch_end("test")
        if counts is not None:
            self.test_accuracies = accuracies(counts)
            self.test_counts = {t: int(counts[METRICS.index(f"acc/{t}"), 1]) for t in QUESTION_TYPES}

    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        if not self.test_accuracies:
            return {}
        path = plot_accuracies(self.test_accuracies, out_dir / "accuracy_per_type.png", self.test_counts)
        return {"Test accuracy per question type (per question; per option for multiple choice)": path}


def fit_token_scale(data: ClevrerQAData, model: nn.Module) -> None:
    """Fit Aloe's token standardisation (``model.standardize``) on every token of the training split,
    once: statistics that came with loaded weights (``model.aloe_init``) are kept, and a resumed run's
    are restored from its checkpoint after this."""
    scale = _aloe_of(model).token_scale
    if scale is None or bool(scale.fitted):
        return
    if data.input_kind != "objects":
        raise ConfigError(  # aloe-frames; aloe-slots has its scale from model.aloe_init or stops earlier
            "model.standardize is fitted on object tokens from the data, and this data gives video: "
            "set --model.standardize false"
        )
    scale.fit(data.tokens("train"))


def check_data_fits_model(data: Any, model: nn.Module, input_kind: str) -> None:
    """One-line ConfigErrors when the datamodule's items do not fit the model's sizes."""
    if not isinstance(data, ClevrerQAData):
        raise ConfigError(f"the video-qa task needs the clevrer-qa datamodule, not {type(data).__name__}")
    c = _aloe_of(model).config
    if data.input_kind != input_kind:
        hint = (
            "--data.encoder frames" if input_kind == "video" else "--model.name aloe-frames (or aloe-slots)"
        )
        raise ConfigError(f"the model reads {input_kind} but the data gives {data.input_kind}: set {hint}")
    needs = {
        "object_dim": (data.object_dim, data.object_dim is not None and c.object_dim != data.object_dim),
        "question_vocab_size": (data.vocab_size, c.question_vocab_size < data.vocab_size),
        "answer_vocab_size": (data.num_answers, c.answer_vocab_size < data.num_answers),
        "max_question_len": (data.lengths.question, c.max_question_len < data.lengths.question),
        "max_choice_len": (data.lengths.choice, c.max_choice_len < data.lengths.choice),
        "max_frames": (data.spec.num_frames, c.max_frames < data.spec.num_frames),
    }
    for name, (value, wrong) in needs.items():
        if wrong:
            raise ConfigError(
                f"the data needs model.{name} {value} (it is {getattr(c, name)}): set --model.{name} {value}"
            )
    size = _aloe_model(model).image_size
    if input_kind == "video" and size is not None and size != data.spec.image_size:
        raise ConfigError(
            f"the model reads {size}-pixel frames, the data has {data.spec.image_size}: "
            f"set --data.image_size {size}"
        )
