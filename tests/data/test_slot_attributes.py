"""scripts/slot_attributes.py by hand: an object's pixel features, its slot's token, the majority floor."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = runpy.run_path(str(Path(__file__).parents[2] / "scripts" / "slot_attributes.py"))


def test_pixel_features_by_hand():
    frame = torch.zeros(3, 4, 4)
    frame[0, 1, 1], frame[0, 1, 2] = 0.2, 0.6  # a red object of two pixels, 0.2 and 0.6
    frame[1, 1, 1], frame[1, 1, 2] = 0.2, 0.2
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1, 1:3] = True
    got = SCRIPT["pixel_features"](frame, mask)
    # mean RGB, its spread (population std: 0.2 for red, 0 for green and blue), chromaticity
    # (rgb + eps / 3) / (r + g + b + eps), eps 1e-3, averaged over the two pixels, area 2 / 16,
    # box 1 x 2 of 4 x 4
    e = 1e-3

    def chroma(value: float, total: float) -> float:
        return (value + e / 3) / (total + e)

    red = (chroma(0.2, 0.4) + chroma(0.6, 0.8)) / 2
    green = (chroma(0.2, 0.4) + chroma(0.2, 0.8)) / 2
    blue = (chroma(0, 0.4) + chroma(0, 0.8)) / 2
    expected = [0.4, 0.2, 0.0, 0.2, 0.0, 0.0, red, green, blue, 2 / 16, 1 / 4, 2 / 4]
    assert got == pytest.approx(expected, abs=1e-6)


def test_each_object_gets_the_token_of_the_slot_with_most_of_its_pixels():
    # one frame of one row of 6 pixels: background, object 1 (3 pixels), object 2 (1 pixel)
    segmentation = torch.tensor([[[0, 0, 1, 1, 1, 2]]])  # (T, H, W)
    held = torch.tensor([[[0, 0, 1, 1, 2, 2]]])  # slot 1 has 2 of object 1's pixels, slot 2 the rest
    masks = torch.nn.functional.one_hot(held, 3).permute(0, 3, 1, 2).float()  # (T, K, H, W)
    tokens = torch.tensor([[[10.0], [11.0], [12.0]]])  # (T, K, D): token = 10 + slot
    video = torch.ones(1, 3, 1, 6)
    found = SCRIPT["objects_of"](tokens, masks, video, segmentation)
    assert [(label, token) for label, token, _ in found] == [(1, [11.0]), (2, [12.0])]


def test_the_majority_floor_answers_the_training_split_s_most_common_value():
    train = np.array([[0, 1, 0], [0, 2, 1], [3, 2, 1]])
    test = np.array([[0, 2, 0], [1, 2, 1], [0, 0, 1], [0, 2, 1]])
    assert SCRIPT["majority"](train, test) == pytest.approx([0.75, 0.75, 0.75])


def test_the_latent_row_drops_exactly_the_pixel_columns():
    # a token with pixels: latent (4), pixels (8), mask summary (3) -> the plain token is 0-3 and 12-14
    assert SCRIPT["latent_columns"](15) == [0, 1, 2, 3, 12, 13, 14]
