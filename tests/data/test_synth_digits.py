import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from attnlab.data.synth_digits import (
    FONT_FILES,
    PLAIN,
    STYLE,
    cached_split,
    digit_fonts,
    digit_mask,
    luminance,
    render_digit,
    render_split,
    synth_digit,
)
from attnlab.errors import ConfigError, InputError


def digest(seed: int, start: int, count: int) -> str:
    images, labels = render_split(seed, start, count)
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def test_every_listed_font_is_found_in_matplotlib_and_draws_ten_distinct_digits():
    fonts = digit_fonts()
    assert [f.name for f in fonts] == [Path(name).stem for name in FONT_FILES]
    for font in fonts:
        assert len({g.tobytes() for g in font.glyphs}) == 10
        assert all(g.shape[0] == font.band and int((g > 127).sum()) >= 40 for g in font.glyphs)


def test_every_font_renders_a_visible_digit_in_the_plain_style():
    for f in range(len(digit_fonts())):
        for digit in range(10):
            rng = np.random.default_rng([f, digit])
            mask = digit_mask(digit, rng, PLAIN, font=f)
            assert mask.shape == (32, 32) and 0.03 < float((mask > 0.5).mean()) < 0.6, (f, digit)
            image = render_digit(digit, np.random.default_rng([f, digit]), PLAIN, font=f)
            grey = luminance(image / 255.0)
            assert mask.max() > 0.95  # some pixel lies wholly inside the glyph: it has the ink's colour
            ink = grey.flat[int(mask.argmax())]
            assert abs(ink - grey[mask == 0].mean()) >= PLAIN.min_contrast - 0.02, (f, digit)


def _ink_crop(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero((mask > 0.3).any(1)), np.flatnonzero((mask > 0.3).any(0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def test_labels_are_the_drawn_digit_by_matching_templates_drawn_independently():
    """The plain render of label d matches PIL's own drawing of d best, among 0-9, in every font."""
    for f, font in enumerate(digit_fonts()):
        face = ImageFont.truetype(font.path, 40)
        templates = []
        for digit in range(10):
            canvas = Image.new("L", (80, 80))
            ImageDraw.Draw(canvas).text((20, 60), str(digit), font=face, fill=255, anchor="ls")
            templates.append(_ink_crop(np.asarray(canvas, dtype=np.float32) / 255))
        for digit in range(10):
            crop = _ink_crop(digit_mask(digit, np.random.default_rng(digit), PLAIN, font=f))
            size = (crop.shape[1], crop.shape[0])
            scores = []
            for template in templates:
                t = np.asarray(Image.fromarray(template).resize(size, Image.Resampling.BILINEAR))
                a, b = crop - crop.mean(), t - t.mean()
                scores.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9)))
            assert int(np.argmax(scores)) == digit, (font.name, digit, np.round(scores, 2))


def test_neighbours_sit_beside_the_centre_digit_and_leave_it_unchanged():
    beside = dataclasses.replace(PLAIN, neighbour_p=1.0, spacing=(0.1, 0.1))
    with_ink_outside = 0
    for digit in range(10):
        alone = digit_mask(digit, np.random.default_rng(1), PLAIN, font=0)
        flanked = digit_mask(digit, np.random.default_rng(2), beside, font=0)
        cols = np.flatnonzero((alone > 0.02).any(0))
        centre = slice(cols[0] + 1, cols[-1])
        assert np.abs(alone[:, centre] - flanked[:, centre]).max() < 0.02
        with_ink_outside += bool(
            (flanked[:, : cols[0] - 1] > 0.5).any() and (flanked[:, cols[-1] + 2 :] > 0.5).any()
        )
    assert with_ink_outside >= 8  # a digit wider than the gap allows may push its neighbours out


def test_images_are_uint8_rgb_and_vary_with_seed_and_index():
    image, label = synth_digit(0, 5)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and 0 <= label <= 9
    same, _ = synth_digit(0, 5)
    assert np.array_equal(image, same)
    assert not np.array_equal(image, synth_digit(0, 6)[0]) and not np.array_equal(image, synth_digit(1, 5)[0])
    assert image.std() > 5  # not a flat square


def test_same_seed_and_index_give_identical_bytes_in_another_process():
    code = (
        "import sys; sys.path.insert(0, 'tests/data'); from test_synth_digits import digest; "
        "print(digest(7, 1000, 24))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == digest(7, 1000, 24)
    # and any index alone renders what it renders inside a range
    images, labels = render_split(7, 1000, 24)
    image, label = synth_digit(7, 1017)
    assert np.array_equal(images[17], image) and labels[17] == label


def test_classes_are_balanced_and_the_cache_returns_read_only_copies():
    images, labels = cached_split(3, 0, 1000)
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 1000 and counts.min() >= 65 and counts.max() <= 135
    assert not images.flags.writeable and cached_split(3, 0, 1000)[0] is images
    assert np.array_equal(render_split(3, 990, 10)[0], images[990:])


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(InputError, match="index >= 0"):
        synth_digit(0, -1)
    with pytest.raises(InputError, match="0-9"):
        render_digit(10, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="neighbour_p must be in"):
        dataclasses.replace(STYLE, neighbour_p=1.5).check()
    with pytest.raises(ConfigError, match="blur must satisfy"):
        dataclasses.replace(STYLE, blur=(1.0, 0.5)).check()
    STYLE.check()
    PLAIN.check()
