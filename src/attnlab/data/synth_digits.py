"""SynthDigits-like house-number crops, rendered here: no download, no system fonts.

Ganin & Lempitsky's SynthDigits (ICML 2015, arXiv:1409.7495) are Windows fonts rendered with
varying position, orientation, colours, blur and background, to look like SVHN's cropped
digits (Netzer et al. 2011): a 32x32 crop centred on one digit, often with parts of the house
number's neighbouring digits at the left and right borders. This module imitates them with the
TrueType fonts that matplotlib ships (DejaVu Sans/Serif/Mono in four styles each, STIX General
in four, Computer Modern roman, bold, sans, italic and typewriter), so a fresh machine renders
the same images as any other with the same matplotlib.

Per image, drawn from a numpy ``Generator`` seeded with ``(seed, index)`` (so image ``index``
is the same in every process): the label, a font, the digit's height and width, rotation,
shear, position jitter, a neighbouring digit at each side (partly cut by the border) with its
gap, foreground and background colours at least ``min_contrast`` apart in luminance, a
background gradient, low-frequency texture, sometimes a plate edge (a second colour beyond a
line near the border) and a drop shadow, Gaussian blur and pixel noise.

How: each font's ten glyphs are rasterised once per process at ``REFERENCE_SIZE`` px and
cropped to their ink (columns) and to the font's common digit band (rows). An image lays the
centre digit and its neighbours side by side in that glyph space, maps them into the crop with
one affine transform at ``supersample`` times the output size (bilinear) and box-filters down.
The mask then blends the foreground colour over the background. ``render_split`` renders a
range of indices (about 1,000 images/s on one busy CPU core: 20,000 in 20 s), ``cached_split``
keeps a few ranges per process.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from attnlab.errors import ConfigError, InputError

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

# Fonts inside matplotlib whose 0-9 are lining digits. Left out: the Display subsets and STIX's
# NonUni/Siz* faces (no digits), LastResortHE (one placeholder glyph), cmex10/cmsy10 (symbols at
# the digits' code points) and cmmi10 (old-style digits of varying height).
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
)
REFERENCE_SIZE = 48  # px font size at which the glyphs are rasterised
MIN_INK = 40  # a digit glyph at the reference size has at least this many pixels above half


@dataclass(frozen=True, eq=False)
class DigitFont:
    """One font's ten digit glyphs: uint8 masks (band, width_d), cropped to each glyph's ink
    columns and to the rows any digit of the font inks (so digits share a baseline and height)."""

    name: str
    path: str
    glyphs: tuple[U8, ...]

    @property
    def band(self) -> int:
        return int(self.glyphs[0].shape[0])


def font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _rasterise(path: Path) -> DigitFont | None:
    """The font's digit glyphs, or None if it does not draw ten distinct, inked, non-.notdef digits."""
    try:
        font = ImageFont.truetype(str(path), REFERENCE_SIZE)
    except OSError:
        return None
    side = 3 * REFERENCE_SIZE

    def draw(text: str) -> U8:
        canvas = Image.new("L", (side, side))
        ImageDraw.Draw(canvas).text(
            (REFERENCE_SIZE // 2, 2 * REFERENCE_SIZE), text, font=font, fill=255, anchor="ls"
        )
        return np.asarray(canvas)

    full = [draw(str(d)) for d in range(10)]
    notdef = draw("\U000f0000")  # a private-use code point no font here maps: the .notdef glyph
    if len({g.tobytes() for g in full}) < 10 or any(np.array_equal(g, notdef) for g in full):
        return None
    if min(int((g > 127).sum()) for g in full) < MIN_INK:
        return None
    rows = np.flatnonzero(np.any(np.stack(full) > 0, axis=(0, 2)))
    glyphs = []
    for g in full:
        cols = np.flatnonzero(g.any(axis=0))
        glyphs.append(np.ascontiguousarray(g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]))
    return DigitFont(name=path.stem, path=str(path), glyphs=tuple(glyphs))


@functools.cache
def digit_fonts() -> tuple[DigitFont, ...]:
    """The usable fonts of :data:`FONT_FILES` (in that order), rasterised once per process."""
    root = font_dir()
    fonts = tuple(f for f in (_rasterise(root / name) for name in FONT_FILES) if f is not None)
    if not fonts:
        raise InputError(f"no font in {root} renders digits: is matplotlib's mpl-data complete?")
    return fonts


@dataclass(frozen=True)
class SynthDigitsStyle:
    """What the renders look like; lengths are fractions of the image side unless named px."""

    size: int = 32  # output side, px
    supersample: int = 2  # the glyphs are mapped at this multiple of ``size``, then box-filtered
    height: tuple[float, float] = (0.5, 0.9)  # the digit band's height
    aspect: tuple[float, float] = (0.75, 1.3)  # horizontal stretch
    rotation: float = 12.0  # degrees, uniform in +-
    shear: float = 0.25  # x shift per unit of y, uniform in +-
    jitter: float = 0.06  # the centre digit's offset from the centre, uniform in +- per axis
    neighbour_p: float = 0.75  # probability of a neighbouring digit at each side
    spacing: tuple[float, float] = (0.05, 0.45)  # gap to a neighbour, in digit heights
    min_contrast: float = 0.3  # luminance difference of foreground and background, in [0, 1]
    gradient: float = 0.35  # largest colour change across the background
    texture: float = 0.12  # largest amplitude of the low-frequency background texture
    edge_p: float = 0.25  # probability of a plate edge: a second colour beyond a line near a border
    shadow_p: float = 0.25  # probability of a one-pixel drop shadow
    blur: tuple[float, float] = (0.0, 1.2)  # Gaussian sigma, px
    noise: tuple[float, float] = (0.0, 0.05)  # pixel noise std

    def check(self) -> None:
        pairs = {"height": self.height, "aspect": self.aspect, "spacing": self.spacing}
        pairs |= {"blur": self.blur, "noise": self.noise}
        for name, (low, high) in pairs.items():
            if not 0 <= low <= high:
                raise ConfigError(f"synth digits: {name} must satisfy 0 <= low <= high, got ({low}, {high})")
        if self.size < 8 or self.supersample < 1 or not 0 < self.height[0] <= self.height[1] <= 1.5:
            raise ConfigError(
                f"synth digits need size >= 8, supersample >= 1, 0 < height <= 1.5, got {self.size}, "
                f"{self.supersample}, {self.height}"
            )
        if self.aspect[0] <= 0:
            raise ConfigError(f"synth digits: aspect must be > 0, got {self.aspect}")
        for name in ("neighbour_p", "edge_p", "shadow_p", "min_contrast"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"synth digits: {name} must be in [0, 1], got {getattr(self, name)}")
        if min(self.rotation, self.shear, self.jitter, self.gradient, self.texture) < 0:
            raise ConfigError("synth digits: rotation, shear, jitter, gradient and texture must be >= 0")


STYLE = SynthDigitsStyle()
# One centred, upright digit of fixed size on a flat background: the labels' reference.
PLAIN = SynthDigitsStyle(
    height=(0.7, 0.7), aspect=(1.0, 1.0), rotation=0.0, shear=0.0, jitter=0.0, neighbour_p=0.0,
    gradient=0.0, texture=0.0, edge_p=0.0, shadow_p=0.0, blur=(0.0, 0.0), noise=(0.0, 0.0),
)  # fmt: skip


def _uniform(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(span[0], span[1])) if span[1] > span[0] else float(span[0])


def digit_mask(
    label: int, rng: np.random.Generator, style: SynthDigitsStyle = STYLE, font: int | None = None
) -> F32:
    """(size, size) float32 coverage in [0, 1] of digit ``label`` and its neighbours."""
    fonts = digit_fonts()
    face = fonts[int(rng.integers(len(fonts))) if font is None else font]
    band = face.band
    centre = face.glyphs[label]
    sides: list[list[U8]] = [[], []]  # left, right: a neighbour glyph and its gap
    for side in (0, 1):
        if rng.random() < style.neighbour_p:
            glyph = face.glyphs[int(rng.integers(10))]
            gap = np.zeros((band, round(_uniform(rng, style.spacing) * band)), np.uint8)
            sides[side] = [glyph, gap] if side == 0 else [gap, glyph]
    strip = np.concatenate([*sides[0], centre, *sides[1]], axis=1)
    left = sum(p.shape[1] for p in sides[0])
    cx, cy = left + centre.shape[1] / 2, band / 2  # the centre glyph's centre, glyph space

    side_px = style.size * style.supersample
    k = band / (_uniform(rng, style.height) * side_px)  # glyph px per output px
    aspect = _uniform(rng, style.aspect)
    angle = math.radians(_uniform(rng, (-style.rotation, style.rotation)))
    shear = _uniform(rng, (-style.shear, style.shear))
    jx, jy = (_uniform(rng, (-style.jitter, style.jitter)) * side_px for _ in range(2))
    # output -> glyph space: undo rotation, then shear, then scale (x by k / aspect, y by k)
    cos, sin = math.cos(angle), math.sin(angle)
    r_inv = np.array([[cos, sin], [-sin, cos]])
    a = np.diag([k / aspect, k]) @ np.array([[1.0, -shear], [0.0, 1.0]]) @ r_inv
    ox, oy = side_px / 2 + jx, side_px / 2 + jy
    data = (
        a[0, 0],
        a[0, 1],
        cx - a[0, 0] * ox - a[0, 1] * oy,
        a[1, 0],
        a[1, 1],
        cy - a[1, 0] * ox - a[1, 1] * oy,
    )
    image = Image.fromarray(strip).transform(
        (side_px, side_px), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR
    )
    if style.supersample > 1:
        image = image.reduce(style.supersample)
    return np.asarray(image, dtype=np.float32) / 255.0


def luminance(rgb: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """ITU-R BT.601 luma of RGB in [0, 1] (last axis)."""
    return rgb @ np.array([0.299, 0.587, 0.114])


def _colour(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """A random RGB colour in [0, 1], biased to the muted colours of house-number plates."""
    hue, saturation, value = rng.random(), rng.random() ** 1.5 * 0.9, rng.uniform(0.04, 1.0)
    return np.array(colorsys.hsv_to_rgb(hue, saturation, value))


def colours(rng: np.random.Generator, min_contrast: float) -> tuple[npt.NDArray[np.float64], ...]:
    """(foreground, background) RGB in [0, 1] whose luminances differ by at least ``min_contrast``."""
    background = _colour(rng)
    for _ in range(32):
        foreground = _colour(rng)
        if abs(float(luminance(foreground) - luminance(background))) >= min_contrast:
            return foreground, background
    # rare: no draw was far enough; black or white is (min_contrast <= 1 > the luma of either)
    return np.full(3, 0.0 if luminance(background) > 0.5 else 1.0), background


@functools.cache
def _grid(size: int) -> tuple[F32, F32]:
    """(y, x) pixel-centre coordinates in [-0.5, 0.5], each (size, size)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    y, x = np.meshgrid(t, t, indexing="ij")
    return y.astype(np.float32), x.astype(np.float32)


def _smooth(rng: np.random.Generator, size: int, cells: int) -> F32:
    """Bilinear upsampling of ``cells`` x ``cells`` standard normals to (size, size)."""
    coarse = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32))
    return np.asarray(coarse.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _shift(mask: F32, dy: int, dx: int) -> F32:
    """``mask`` moved by (dy, dx) pixels, zeros shifted in."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _background(rng: np.random.Generator, colour: npt.NDArray[np.float64], style: SynthDigitsStyle) -> F32:
    """(size, size, 3) background: gradient, texture and perhaps a plate edge."""
    size = style.size
    y, x = _grid(size)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = x * math.cos(theta) + y * math.sin(theta)  # in about [-0.7, 0.7]
    change = rng.uniform(-1.0, 1.0, 3) * style.gradient * rng.random()
    image = colour.astype(np.float32) + ramp[..., None] * change.astype(np.float32)
    if style.texture > 0:
        cells = int(rng.integers(3, 7))
        image += (style.texture * rng.random() * _smooth(rng, size, cells))[..., None]
    if rng.random() < style.edge_p:
        phi = rng.uniform(0, 2 * math.pi)
        distance = rng.uniform(0.3, 0.48)  # from the centre: the edge stays beside the digit
        weight = np.clip((x * math.cos(phi) + y * math.sin(phi) - distance) * size + 0.5, 0.0, 1.0)
        image += weight[..., None] * (_colour(rng).astype(np.float32) - image)
    return image


def render_digit(
    label: int, rng: np.random.Generator, style: SynthDigitsStyle = STYLE, font: int | None = None
) -> U8:
    """(size, size, 3) uint8 RGB crop of digit ``label`` (0-9), every choice drawn from ``rng``.

    ``font`` picks one of :func:`digit_fonts` (default: a random one).
    """
    if not 0 <= label <= 9:
        raise InputError(f"a digit label is in 0-9, got {label}")
    mask = digit_mask(label, rng, style, font)[..., None]  # (S, S, 1)
    foreground, background = colours(rng, style.min_contrast)
    image = _background(rng, background, style)
    if rng.random() < style.shadow_p:
        dy, dx = (int(v) for v in rng.choice([-1, 1], 2))
        shade = np.clip(background * rng.choice([0.35, 1.6]), 0, 1).astype(np.float32)
        shadow = 0.8 * _shift(mask[..., 0], dy, dx)[..., None]
        image = image * (1 - shadow) + shade * shadow
    image = image * (1 - mask) + foreground.astype(np.float32) * mask
    pixels = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    sigma = _uniform(rng, style.blur)
    if sigma > 0.05:
        pixels = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(sigma)))
    std = _uniform(rng, style.noise) * 255
    if std > 0:
        noisy = pixels + np.float32(std) * rng.standard_normal(pixels.shape, dtype=np.float32)
        pixels = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return pixels


def synth_digit(seed: int, index: int, style: SynthDigitsStyle = STYLE) -> tuple[U8, int]:
    """Image ``index`` of the stream ``seed``: ((size, size, 3) uint8, its label 0-9), the same in
    every process (a numpy Generator seeded with both numbers draws the label, then the render)."""
    if seed < 0 or index < 0:
        raise InputError(f"synth digits need seed >= 0 and index >= 0, got {seed}, {index}")
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(10))
    return render_digit(label, rng, style), label


def render_split(
    seed: int, start: int, count: int, style: SynthDigitsStyle = STYLE
) -> tuple[U8, npt.NDArray[np.int64]]:
    """Images ``start .. start + count - 1``: ((count, size, size, 3) uint8, (count,) int64 labels)."""
    images = np.empty((count, style.size, style.size, 3), np.uint8)
    labels = np.empty(count, np.int64)
    for i in range(count):
        images[i], labels[i] = synth_digit(seed, start + i, style)
    return images, labels


@functools.lru_cache(maxsize=8)
def cached_split(
    seed: int, start: int, count: int, style: SynthDigitsStyle = STYLE
) -> tuple[U8, npt.NDArray[np.int64]]:
    """:func:`render_split`, kept per process (read-only arrays: copy before writing)."""
    images, labels = render_split(seed, start, count, style)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels
