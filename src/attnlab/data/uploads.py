"""Files people bring (through the explorer's upload): checked and decoded in one place, each into
the plain array a datamodule's ``from_*`` method makes an example of.

- pictures (PNG, JPEG, GIF, BMP, WebP) -> (H, W, 3) uint8 RGB;
- videos (MP4, WebM, AVI, MOV, MKV, animated GIF; PyAV through imageio) -> (T, H, W, 3) uint8 RGB;
- signals (a ``.ts`` file's first series, or a CSV with a row per time step and a column per
  channel) -> (C, L) float64;
- point clouds (KITTI ``.bin``: float32 x y z reflectance; ``.ply`` with x, y, z and an optional
  intensity/reflectance property) -> (N, 4) float32.

Every refusal is one line (:class:`InputError`); nothing a file holds is executed.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from attnlab.errors import InputError

UploadKind = Literal["picture", "video", "signal", "points"]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
MAX_FRAMES = 512
PICTURE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv", ".gif")
SIGNAL_SUFFIXES = (".ts", ".csv")
POINT_SUFFIXES = (".bin", ".ply")
ACCEPTS: dict[UploadKind, str] = {  # what a browser's file picker offers, per kind
    "picture": "image/*",
    "video": ",".join(VIDEO_SUFFIXES),
    "signal": ",".join(SIGNAL_SUFFIXES),
    "points": ",".join(POINT_SUFFIXES),
}


def _check_size(data: bytes) -> None:
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the upload is {len(data) / 2**20:.1f} MiB; at most {MAX_UPLOAD_BYTES // 2**20} MiB"
        )
    if not data:
        raise InputError("the upload is empty")


def _suffix(name: str, allowed: tuple[str, ...], what: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in allowed:
        raise InputError(f"unsupported {what} file {name!r}: {', '.join(allowed)}")
    return suffix


def _as_file(data: bytes, name: str, read: Callable[[Path], np.ndarray]) -> np.ndarray:
    """Run a reader that takes a path (the formats' own readers) on uploaded bytes; its messages
    name the uploaded file, not the temporary one."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{Path(name).suffix.lower()}"
        path.write_bytes(data)
        try:
            return read(path)
        except InputError as exc:
            raise InputError(str(exc).replace(str(path), Path(name).name)) from None


def read_picture(data: bytes) -> np.ndarray:
    """Uploaded bytes as (H, W, 3) uint8 RGB; one line for anything else or anything too big."""
    _check_size(data)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in PICTURE_FORMATS:
                raise InputError(
                    f"unsupported upload type {image.format}: PNG, JPEG, GIF, BMP or WebP pictures"
                )
            if image.width * image.height > MAX_PIXELS:
                raise InputError(f"the picture is {image.width}x{image.height} pixels; at most 4096x4096")
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError):
        raise InputError("unsupported upload type: not a PNG, JPEG, GIF, BMP or WebP picture") from None


def read_video(data: bytes, name: str) -> np.ndarray:
    """A video file's frames as (T, H, W, 3) uint8 RGB (at most :data:`MAX_FRAMES`)."""
    _check_size(data)
    _suffix(name, VIDEO_SUFFIXES, "video")
    return _as_file(data, name, _decode_video)


def _decode_video(path: Path) -> np.ndarray:
    import imageio.v3 as iio  # the video extra

    frames = []
    try:
        for frame in iio.imiter(path, plugin="pyav"):
            if frame.ndim == 2:  # grey
                frame = np.repeat(frame[..., None], 3, axis=-1)
            frames.append(frame[..., :3])
            if len(frames) > MAX_FRAMES:
                raise InputError(f"the video has more than {MAX_FRAMES} frames")
            if frame.shape[0] * frame.shape[1] > MAX_PIXELS:
                raise InputError(f"the video is {frame.shape[1]}x{frame.shape[0]} pixels; at most 4096x4096")
    except (OSError, ValueError, RuntimeError) as exc:  # PyAV's errors derive from these
        raise InputError(f"cannot decode the video: {str(exc).splitlines()[0]}") from None
    if not frames:
        raise InputError("the video has no frames")
    return np.stack(frames).astype(np.uint8)  # (T, H, W, 3)


def read_signal(data: bytes, name: str) -> np.ndarray:
    """A signal as (C, L) float64: a ``.ts`` file's first series, or a CSV (a row per step)."""
    _check_size(data)
    suffix = _suffix(name, SIGNAL_SUFFIXES, "signal")
    signal = _as_file(data, name, _first_ts_series) if suffix == ".ts" else _read_csv(data)
    if not np.isfinite(signal).all():
        raise InputError("the signal has missing (NaN) or infinite samples")
    return signal


def _first_ts_series(path: Path) -> np.ndarray:
    from attnlab.data.ts_format import read_ts

    return read_ts(path).series[0].astype(np.float64)


def _read_csv(data: bytes) -> np.ndarray:
    """A row per time step, a column per channel; a header row of names is skipped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the CSV is not UTF-8 text") from None
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header
    if not rows:
        raise InputError("the CSV has no rows of numbers")
    width = len(rows[0])
    for n, row in enumerate(rows):
        if len(row) != width or not _numeric(row):
            raise InputError(f"CSV row {n + 1}: expected {width} numbers, got {','.join(row)[:60]!r}")
    return np.asarray([[float(v) for v in row] for row in rows], dtype=np.float64).T  # (C, L)


def _numeric(row: list[str]) -> bool:
    try:
        for value in row:
            float(value)
    except ValueError:
        return False
    return True


def read_point_cloud(data: bytes, name: str) -> np.ndarray:
    """A LiDAR scan as (N, 4) float32 x y z reflectance (KITTI ``.bin`` or ``.ply``)."""
    _check_size(data)
    suffix = _suffix(name, POINT_SUFFIXES, "point cloud")
    if suffix == ".bin":
        from attnlab.data.kitti import read_points

        return _as_file(data, name, read_points)
    return _read_ply(data)


def _read_ply(data: bytes) -> np.ndarray:
    from plyfile import PlyData, PlyParseError  # the points extra

    try:
        vertex = PlyData.read(io.BytesIO(data))["vertex"]
    except KeyError:
        raise InputError("the .ply file has no vertex element") from None
    except (PlyParseError, ValueError, IndexError, TypeError) as exc:
        raise InputError(f"cannot read the .ply file: {str(exc).splitlines()[0]}") from None
    names = set(vertex.data.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise InputError(f"the .ply file's vertices have no x, y, z (they have {sorted(names)})")
    power = next((vertex[p] for p in ("intensity", "reflectance", "scalar_intensity") if p in names), None)
    columns = [
        vertex["x"],
        vertex["y"],
        vertex["z"],
        power if power is not None else np.zeros(len(vertex.data)),
    ]
    points = np.stack(columns, axis=1).astype(np.float32)  # (N, 4)
    if len(points) == 0:
        raise InputError("the .ply file has no points")
    if not np.isfinite(points[:, :3]).all():
        raise InputError("the .ply file has points with NaN or infinite coordinates")
    return points


def clip_frames(frames: np.ndarray, count: int, size: int, grey: bool = False) -> torch.Tensor:
    """``count`` frames spread evenly over a decoded video (T, H, W, 3) uint8, each resized by area
    to ``size`` x ``size``: (count, C, size, size) float in [0, 1], C = 1 if ``grey`` else 3."""
    if len(frames) < count:
        raise InputError(f"the video has {len(frames)} frames; this run's clips have {count}")
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    mode = "L" if grey else "RGB"
    resized = [
        np.asarray(Image.fromarray(frames[i]).convert(mode).resize((size, size), Image.Resampling.BOX))
        for i in picks
    ]
    clip = torch.from_numpy(np.stack(resized).astype(np.float32) / 255.0)  # (T, S, S) or (T, S, S, 3)
    return clip[:, None] if grey else clip.permute(0, 3, 1, 2)  # (T, C, S, S)
