"""V-JEPA's 3D sincos tables against the official ``get_3d_sincos_pos_embed`` outputs
(``vjepa_masks_and_posembed.pt``), and the channel split they imply."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models.vjepa.positions import axis_dims, sincos_table_3d
from tests.models.vjepa._reference import load

CASES = [
    ("uniform_power_True/D64_grid4_depth2", (2, 4, 4), 64, True),
    ("uniform_power_False/D64_grid4_depth2", (2, 4, 4), 64, False),
    ("uniform_power_True/D32_grid4_depth2", (2, 4, 4), 32, True),
    ("uniform_power_True/D1024_grid14_depth8", (8, 14, 14), 1024, True),
]


@pytest.mark.parametrize(("key", "grid", "dim", "uniform"), CASES)
def test_tables_match_the_official_ones(key: str, grid: tuple[int, int, int], dim: int, uniform: bool):
    expected = load("vjepa_masks_and_posembed.pt")["pos_embed"][key]
    table = sincos_table_3d(grid, dim, uniform_power=uniform)[: len(expected)]
    torch.testing.assert_close(table, expected, atol=1e-6, rtol=0)


def test_channel_split():
    assert axis_dims(64, uniform_power=True) == (22, 22, 22)  # cut to 64: [t 22 | h 22 | w 20]
    assert axis_dims(64, uniform_power=False) == (32, 16, 16)
    with pytest.raises(ConfigError, match="divisible by 8"):
        axis_dims(36, uniform_power=False)


def test_time_part_is_constant_within_a_frame_and_column_part_within_a_column():
    table = sincos_table_3d((2, 3, 4), 64, uniform_power=True).view(2, 3, 4, 64)
    assert torch.equal(table[0, :, :, :22], table[0, :1, :1, :22].expand(3, 4, 22))
    assert torch.equal(table[:, :, 1, 44:], table[:1, :1, 1, 44:].expand(2, 3, 20))
    assert not torch.equal(table[0, 0, 0], table[1, 0, 0])
