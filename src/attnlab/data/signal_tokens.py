"""Signal tokens: find the one informative token among noise (the demo task).

Each sequence holds ``seq_len`` noise tokens drawn from ``num_noise`` symbols, with
exactly one position replaced by one of ``num_classes`` signal symbols; the label
is which signal symbol it is. A classifier has to find that token wherever it
is, which is what attention does, so its attention should land on it; the
position is given with each sample (``evidence``) so pictures can show it.
Sample ``i`` is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError


class SignalTokens(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, *, seq_len: int, num_noise: int, num_classes: int, seed: int, size: int | None):
        self.seq_len, self.num_noise, self.num_classes = seq_len, num_noise, num_classes
        self.seed, self.size = seed, size
        self.procedural = size is None  # the training stream: sample i for any i >= 0

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("a procedural dataset has no length")
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self.size is not None and not 0 <= index < self.size:
            raise IndexError(index)
        gen = torch.Generator().manual_seed(self.seed * 7_919 + index)
        tokens = torch.randint(self.num_noise, (self.seq_len,), generator=gen)
        label = torch.randint(self.num_classes, (), generator=gen)
        evidence = torch.randint(self.seq_len, (), generator=gen)
        tokens[evidence] = self.num_noise + label
        return {"input": tokens, "label": label, "evidence": evidence}


@register_datamodule("signal-tokens")
class SignalTokensData(DataModule):
    """Generated sequences with one class-bearing token among noise."""

    def __init__(
        self,
        *,
        seed: int,
        seq_len: int = 32,
        num_noise: int = 16,
        num_classes: int = 8,
        val_size: int = 512,
        test_size: int = 1024,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if seq_len < 1 or num_noise < 1 or num_classes < 2:
            raise ConfigError("signal-tokens needs seq_len >= 1, num_noise >= 1, num_classes >= 2")
        self.seq_len, self.num_noise, self.num_classes = seq_len, num_noise, num_classes
        self.sizes: dict[Split, int | None] = {"train": None, "val": val_size, "test": test_size}

    @property
    def vocab_size(self) -> int:
        return self.num_noise + self.num_classes

    def build(self, split: Split) -> SignalTokens:
        # disjoint streams per split: different base seeds
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]
        return SignalTokens(
            seq_len=self.seq_len,
            num_noise=self.num_noise,
            num_classes=self.num_classes,
            seed=self.seed + offset,
            size=self.sizes[split],
        )
