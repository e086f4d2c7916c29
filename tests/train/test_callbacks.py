"""The step progress bar says "first step" until the first step of the process has ended."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from attnlab.train.callbacks import StepProgressBar


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Descriptions(L.Callback):
    """The bar's description as each training batch starts."""

    def __init__(self, bar: StepProgressBar) -> None:
        self.bar, self.seen = bar, []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, i: int
    ) -> None:
        assert self.bar.progress is not None and self.bar.train_progress_bar_id is not None
        self.seen.append(self.bar.progress.tasks[self.bar.train_progress_bar_id].description)


@pytest.mark.parametrize(
    ("compiling", "first"), [(False, "train: first step"), (True, "train: first step, compiling")]
)
def test_first_step_is_named_until_it_ends(tmp_path, compiling: bool, first: str):
    bar = StepProgressBar(compiling=compiling)
    seen = _Descriptions(bar)
    trainer = L.Trainer(
        max_steps=3,
        callbacks=[bar, seen],
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    data = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2)
    trainer.fit(_Tiny(), train_dataloaders=data)
    assert seen.seen == [first, "train", "train"]
