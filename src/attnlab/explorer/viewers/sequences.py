"""The sequence-to-sequence viewer: forced-decoding attention beside the known alignment."""

from __future__ import annotations

from typing import Any

import torch

from attnlab.data.reversal import BOS, EOS, PAD
from attnlab.explorer.pictures import rounded
from attnlab.explorer.viewers.base import LoadedRun, NotViewable
from attnlab.models.seq2seq.gru_attention import GRUSeq2Seq
from attnlab.train.seq2seq import Seq2SeqTask

SPECIAL = {PAD: "PAD", BOS: "BOS", EOS: "EOS"}  # words are shown as their ids


def _words(tokens: torch.Tensor) -> list[str]:
    return [SPECIAL.get(int(t), str(int(t))) for t in tokens]


def view_seq2seq(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """The attention of forced decoding of the reference as a target x source matrix (rows sum to
    1), the known alignment beside it, and the greedy output."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; a sequence model's attention is its alignment")
    if "source" not in example:
        raise NotViewable(
            "a sequence model takes token sequences; upload a picture to an image classifier's run"
        )
    task, model = loaded.task, loaded.task.model
    assert isinstance(task, Seq2SeqTask) and isinstance(model, GRUSeq2Seq)  # the seq2seq task's model
    batch = {k: v[None] for k, v in example.items()}
    with torch.no_grad():
        _, weights = task.forced_attention(batch)
        decoded = model.generate(batch["source"], batch["source_mask"], batch["target"].shape[1])[0]
    if weights is None:
        raise NotViewable("this sequence model has no attention to show (seq2seq-none)")
    S = int((~example["source_mask"]).sum())  # the source's words
    T = int((~example["target_mask"]).sum())  # the target up to and with EOS
    known = torch.zeros(T, S)
    aligned = example["alignment"][:T]
    rows = torch.nonzero(aligned >= 0).flatten()
    known[rows, aligned[rows]] = 1.0
    ends = (decoded == EOS).nonzero()
    output = decoded[: int(ends[0]) + 1] if len(ends) else decoded
    return {
        "input": {
            "kind": "matrix",
            "rows": _words(example["target"][:T]),
            "cols": _words(example["source"][:S]),
        },
        "prediction": [{"label": " ".join(_words(output)), "p": None}],
        "target": " ".join(_words(example["target"][:T])),
        "maps": [
            {"name": "attention, forced decoding", "shape": [T, S], "heads": [rounded(weights[0, :T, :S])]},
            {"name": "known alignment", "shape": [T, S], "heads": [rounded(known)]},
        ],
        "methods": [],
    }
