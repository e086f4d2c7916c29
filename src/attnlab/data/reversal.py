"""Token reversal: a generated word-level transduction task whose right alignment is known.

The source is ``L`` random word tokens (``min_len <= L <= max_len``); the target is the same
tokens in reverse order, then EOS. Target position ``i < L`` comes from source position
``L - 1 - i``; EOS comes from no source word (alignment -1). An encoder-decoder with attention
should learn the anti-diagonal, which is what the alignment metrics score.

Token ids: 0 padding, 1 BOS (the decoder's first input), 2 EOS, words from 3. Every sample is
padded to fixed lengths (source ``max_len``, target ``max_len + 1``) so batches are dicts of
equal-shaped tensors; the masks are True at padding. Sample ``i`` is a pure function of
``(seed, i)``.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError

PAD, BOS, EOS, FIRST_WORD = 0, 1, 2, 3
UNALIGNED = -1  # alignment of EOS and padding: no source word


class ReversalTokens(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, *, num_words: int, min_len: int, max_len: int, seed: int, size: int | None):
        self.num_words, self.min_len, self.max_len = num_words, min_len, max_len
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
        length = int(torch.randint(self.min_len, self.max_len + 1, (), generator=gen))
        words = torch.randint(FIRST_WORD, FIRST_WORD + self.num_words, (length,), generator=gen)
        source = torch.full((self.max_len,), PAD)
        source[:length] = words
        target = torch.full((self.max_len + 1,), PAD)
        target[:length] = words.flip(0)
        target[length] = EOS
        alignment = torch.full((self.max_len + 1,), UNALIGNED)
        alignment[:length] = torch.arange(length - 1, -1, -1)  # target i <- source L - 1 - i
        return {
            "source": source,  # (S,)
            "source_mask": source == PAD,  # (S,) True at padding
            "target": target,  # (T,) = (S + 1,)
            "target_mask": torch.arange(self.max_len + 1) > length,  # (T,) True after EOS
            "alignment": alignment,  # (T,) source position of each target token, -1 for none
        }


@register_datamodule("reverse-tokens")
class ReversalData(DataModule):
    """Generated word sequences and their reversal; known alignment: target i <- source L-1-i."""

    def __init__(
        self,
        *,
        seed: int,
        num_words: int = 20,
        min_len: int = 3,
        max_len: int = 12,
        val_size: int = 256,
        test_size: int = 1024,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if num_words < 2 or not 1 <= min_len <= max_len:
            raise ConfigError(
                f"reverse-tokens needs num_words >= 2 and 1 <= min_len <= max_len, "
                f"got {num_words}, {min_len}, {max_len}"
            )
        self.num_words, self.min_len, self.max_len = num_words, min_len, max_len
        self.sizes: dict[Split, int | None] = {"train": None, "val": val_size, "test": test_size}

    @property
    def vocab_size(self) -> int:
        return FIRST_WORD + self.num_words

    def build(self, split: Split) -> ReversalTokens:
        # disjoint streams per split: different base seeds
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]
        return ReversalTokens(
            num_words=self.num_words,
            min_len=self.min_len,
            max_len=self.max_len,
            seed=self.seed + offset,
            size=self.sizes[split],
        )
