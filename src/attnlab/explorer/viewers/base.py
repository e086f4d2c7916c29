"""What every viewer shares: the loaded run, the one-line refusal, the input as a picture."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from attnlab.data.datamodule import DataModule
from attnlab.errors import AttnlabError
from attnlab.explorer.pictures import png_url
from attnlab.train.task import Task

if TYPE_CHECKING:  # agents.py imports this module
    from attnlab.explorer.viewers.agents import Agent

MAX_EXAMPLES = 32  # test examples a run offers to look at


class NotViewable(AttnlabError):
    """A run the explorer has no viewer for, or cannot load (said in one line on the page)."""


@dataclass
class LoadedRun:
    """A run ready to view: a Lightning task and its datamodule, or the agent a runner trained
    (reinforcement learning: ``agent``, with no task and no datamodule)."""

    lightning_task: Task | None  # None for an agent: read ``task``
    data: DataModule  # makes an uploaded file an example (an agent's takes none)
    examples: list[dict[str, torch.Tensor]]  # one test example (an agent: one step) each, no batch dimension
    class_names: list[str] | None  # an agent's: its action names
    agent: Agent | None = None

    @property
    def task(self) -> Task:
        if self.lightning_task is None:
            raise NotViewable("this run trained an agent with a runner: it has no Lightning task")
        return self.lightning_task

    def name(self, index: int | torch.Tensor) -> str:
        """Class ``index``'s name (its number where the dataset names none)."""
        i, names = int(index), self.class_names
        return names[i] if names and i < len(names) else str(i)

    def target(self, example: dict[str, torch.Tensor]) -> str | None:
        """The example's label as a class name, or None for an example without one (an upload)."""
        label = example.get("label")
        return None if label is None else self.name(label)

    def top_classes(self, logits: torch.Tensor, k: int = 3, prefix: str = "") -> list[dict[str, Any]]:
        """The ``k`` likeliest classes of one example's (1, K) logits, as the page lists them."""
        probs = logits.softmax(-1)[0]
        top = probs.topk(min(k, probs.numel()))
        return [
            {"label": prefix + self.name(i), "p": round(float(p), 4)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]


def input_picture(x: torch.Tensor, value_range: tuple[float, float] | None = None) -> dict[str, Any]:
    if x.dim() == 3 and x.shape[0] in (1, 3):
        return {"kind": "image", "png": png_url(x, value_range), "shape": list(x.shape[1:])}
    if x.dim() == 4:  # (T, C, H, W): a clip, drawn frame by frame
        return {"kind": "video", "frames": [png_url(frame) for frame in x], "shape": list(x.shape[2:])}
    rows = x[None] if x.dim() == 1 else x.reshape(-1, x.shape[-1])  # (C, L): a column per token or step
    return {"kind": "sequence", "png": png_url(rows), "shape": list(rows.shape)}
