"""Reader for KITTI 3-D object files: velodyne points, labels, calibration, image size, splits.

The layout is KITTI's (``training/{velodyne,label_2,calib,image_2}/NNNNNN.*``,
``ImageSets/{train,val,trainval,test}.txt``):

- ``velodyne/*.bin``: float32 rows ``x y z reflectance`` in the LiDAR frame (x forward, y left,
  z up, metres).
- ``label_2/*.txt``: one object a line, 15 columns (16 with a detection score; see
  :class:`~attnlab.metrics.kitti_objects.KittiObjects`), dimensions read as ``h w l`` and kept
  as ``l h w``.
- ``calib/*.txt``: ``P0..P3`` (3x4 projections of the rectified cameras), ``R0_rect`` (3x3
  rectification), ``Tr_velo_to_cam`` (3x4 LiDAR -> unrectified camera 0), ``Tr_imu_to_velo``.
  A point goes from LiDAR to the rectified camera as ``R0_rect @ Tr_velo_to_cam @ p`` and to
  pixels of image 2 as ``P2 @ that``.

The geometry helpers match zhulf0804/PointPillars' ``read_calib``, ``bbox_camera2lidar``,
``bbox3d2corners`` and ``judge_difficulty`` on two real KITTI frames
(``tests/data/test_kitti.py`` against ``../shared/reference/kitti_eval/demo_frames``).
Every malformed file fails with one :class:`~attnlab.errors.InputError` line naming the file.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlab.errors import InputError
from attnlab.metrics.kitti_objects import KittiObjects

KITTI_CLASSES = (
    "Car",
    "Van",
    "Truck",
    "Pedestrian",
    "Person_sitting",
    "Cyclist",
    "Tram",
    "Misc",
    "DontCare",
)
CALIB_KEYS = ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam")
# Difficulty as KITTI's devkit defines it (and PointPillars' judge_difficulty computes it):
# the easiest level whose height, occlusion and truncation limits the object meets.
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.30, 0.50)


def read_points(path: str | Path) -> np.ndarray:
    """(N, 4) float32 ``x y z reflectance`` from a KITTI ``.bin`` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: point file not found")
    size = path.stat().st_size
    if size % 16 != 0:
        raise InputError(
            f"{path}: {size} bytes is not a multiple of 16 (4 float32 per point: x y z reflectance)"
        )
    points = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    if len(points) == 0:
        raise InputError(f"{path}: empty scene (no points)")
    bad = ~np.isfinite(points[:, :3]).all(1)
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(f"{path}: {int(bad.sum())} points with NaN or inf coordinates (first: row {first})")
    return points


def write_points(path: str | Path, points: np.ndarray) -> None:
    """Write (N, 4) points as KITTI float32 rows."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(points, dtype="<f4").reshape(-1, 4).tofile(path)


@dataclass
class Calibration:
    """A frame's calibration, each matrix extended to 4x4 with a ``0 0 0 1`` row (float64)."""

    P: np.ndarray  # (4, 4, 4): P0..P3
    R0_rect: np.ndarray  # (4, 4)
    Tr_velo_to_cam: np.ndarray  # (4, 4)
    Tr_imu_to_velo: np.ndarray | None = None  # (4, 4), absent from some files

    @property
    def velo_to_rect(self) -> np.ndarray:
        """(4, 4) LiDAR -> rectified camera."""
        return self.R0_rect @ self.Tr_velo_to_cam

    def lidar_to_camera(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) LiDAR points -> (N, 3) rectified camera coordinates."""
        return _apply(self.velo_to_rect, xyz)

    def camera_to_lidar(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) rectified camera coordinates -> (N, 3) LiDAR points."""
        return _apply(np.linalg.inv(self.velo_to_rect), xyz)

    def camera_to_image(self, xyz: np.ndarray, camera: int = 2) -> np.ndarray:
        """(N, 3) rectified camera points -> (N, 2) pixels of ``image_<camera>``."""
        hom = np.concatenate([xyz, np.ones((len(xyz), 1))], 1) @ self.P[camera].T  # (N, 4)
        return hom[:, :2] / hom[:, 2:3]


def _apply(matrix: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    return xyz @ matrix[:3, :3].T + matrix[:3, 3]


def _extend(values: list[float], rows: int) -> np.ndarray:
    out = np.eye(4)
    cols = len(values) // rows
    out[:rows, :cols] = np.asarray(values).reshape(rows, cols)
    return out


def read_calib(path: str | Path) -> Calibration:
    """Parse a KITTI ``calib`` file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: calibration file not found")
    entries: dict[str, list[float]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, _, rest = line.partition(":")
        try:
            entries[key.strip()] = [float(v) for v in rest.split()]
        except ValueError:
            raise InputError(
                f"{path}:{number}: calibration '{key.strip()}' has a value that is not a number"
            ) from None
    missing = [k for k in CALIB_KEYS if k not in entries]
    if missing:
        raise InputError(f"{path}: calibration lacks {', '.join(missing)}")
    expected = {"R0_rect": 9, "Tr_velo_to_cam": 12, "Tr_imu_to_velo": 12} | {f"P{i}": 12 for i in range(4)}
    for key, count in expected.items():
        if key in entries and len(entries[key]) != count:
            raise InputError(f"{path}: calibration '{key}' has {len(entries[key])} values, expected {count}")
    return Calibration(
        P=np.stack([_extend(entries[f"P{i}"], 3) for i in range(4)]),
        R0_rect=_extend(entries["R0_rect"], 3),
        Tr_velo_to_cam=_extend(entries["Tr_velo_to_cam"], 3),
        Tr_imu_to_velo=_extend(entries["Tr_imu_to_velo"], 3) if "Tr_imu_to_velo" in entries else None,
    )


def format_calib(calib: Calibration) -> str:
    """The text of a KITTI ``calib`` file (the inverse of :func:`read_calib`)."""

    def row(key: str, matrix: np.ndarray, rows: int, cols: int) -> str:
        return f"{key}: " + " ".join(f"{v:.12e}" for v in matrix[:rows, :cols].ravel())

    lines = [row(f"P{i}", calib.P[i], 3, 4) for i in range(4)]
    lines += [row("R0_rect", calib.R0_rect, 3, 3), row("Tr_velo_to_cam", calib.Tr_velo_to_cam, 3, 4)]
    if calib.Tr_imu_to_velo is not None:
        lines.append(row("Tr_imu_to_velo", calib.Tr_imu_to_velo, 3, 4))
    return "\n".join(lines) + "\n"


def parse_label_lines(lines: list[str], source: str = "<labels>") -> KittiObjects:
    """KITTI label (15 columns) or detection (16 columns, with score) lines -> objects."""
    rows = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (15, 16):
            raise InputError(
                f"{source}:{number}: {len(parts)} fields, a KITTI label line has 15 (16 with a score)"
            )
        if parts[0] not in KITTI_CLASSES:
            raise InputError(
                f"{source}:{number}: unknown class '{parts[0]}'; valid: {', '.join(KITTI_CLASSES)}"
            )
        try:
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise InputError(f"{source}:{number}: a field that is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"{source}:{number}: NaN or inf in a label field")
        rows.append((parts[0], values))
    if not rows:
        return KittiObjects.empty()
    v = np.array([r[1] if len(r[1]) == 15 else [*r[1], 0.0] for r in rows], dtype=np.float64)  # (N, 15)
    return KittiObjects(
        name=np.array([r[0] for r in rows]),
        truncated=v[:, 0],
        occluded=v[:, 1].astype(np.int64),
        alpha=v[:, 2],
        bbox=v[:, 3:7],
        dimensions=v[:, [9, 7, 8]],  # file h w l -> l h w
        location=v[:, 10:13],
        rotation_y=v[:, 13],
        score=v[:, 14],
    )


def read_label(path: str | Path) -> KittiObjects:
    """Parse a KITTI ``label_2`` (or detection result) file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label file not found")
    return parse_label_lines(path.read_text().splitlines(), str(path))


def read_labels(folder: str | Path, frame_ids: list[str]) -> list[KittiObjects]:
    """The label (or detection) files of ``frame_ids`` in ``folder``, in order: the input of
    :func:`attnlab.metrics.kitti_eval.kitti_eval` (ground truth and detections alike)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: label folder not found")
    return [read_label(folder / f"{frame_id}.txt") for frame_id in frame_ids]


def format_label_lines(objects: KittiObjects, with_score: bool = False) -> list[str]:
    """The inverse of :func:`parse_label_lines` (2 decimals, 4 with scores, as KITTI's files)."""
    lines = []
    digits = 4 if with_score else 2
    for i in range(len(objects)):
        l_, h, w = objects.dimensions[i]
        fields = [
            f"{objects.truncated[i]:.2f}",
            f"{int(objects.occluded[i])}",
            *(
                f"{v:.{digits}f}"
                for v in (objects.alpha[i], *objects.bbox[i], h, w, l_, *objects.location[i])
            ),
            f"{objects.rotation_y[i]:.{digits}f}",
        ]
        if with_score:
            fields.append(f"{objects.score[i]:.4f}")
        lines.append(" ".join([str(objects.name[i]), *fields]))
    return lines


def difficulty(objects: KittiObjects) -> np.ndarray:
    """(N,) 0 easy, 1 moderate, 2 hard, -1 none (DontCare, tiny or heavily occluded boxes)."""
    height = objects.bbox[:, 3] - objects.bbox[:, 1]
    out = np.full(len(objects), -1, dtype=np.int64)
    for level in (2, 1, 0):  # the easiest level met wins, so it is assigned last
        ok = (
            (height > MIN_HEIGHT[level])
            & (objects.occluded <= MAX_OCCLUSION[level])
            & (objects.truncated <= MAX_TRUNCATION[level])
        )
        out[ok] = level
    return out


def boxes_camera_to_lidar(objects: KittiObjects, calib: Calibration) -> np.ndarray:
    """(N, 7) LiDAR boxes ``(x, y, z, w, l, h, ry)``: bottom centre, sizes along (x, y, z).

    The yaw is carried over unchanged: a box of yaw ``ry`` is rotated by ``-ry`` about the LiDAR
    z axis (PointPillars' convention, see :func:`lidar_box_corners`).
    """
    xyz = calib.camera_to_lidar(objects.location)
    l_, h, w = objects.dimensions.T
    return np.concatenate([xyz, np.stack([w, l_, h], 1), objects.rotation_y[:, None]], 1)


def lidar_box_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 7) LiDAR boxes ``(x, y, z, w, l, h, ry)`` -> (N, 8, 3) corners (z from the bottom)."""
    unit = np.array(
        [[-0.5, -0.5, 0], [-0.5, -0.5, 1], [-0.5, 0.5, 1], [-0.5, 0.5, 0],
         [0.5, -0.5, 0], [0.5, -0.5, 1], [0.5, 0.5, 1], [0.5, 0.5, 0]]
    )  # fmt: skip
    local = unit[None] * boxes[:, None, 3:6]  # (N, 8, 3)
    cos, sin = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    x = local[..., 0] * cos[:, None] + local[..., 1] * sin[:, None]
    y = -local[..., 0] * sin[:, None] + local[..., 1] * cos[:, None]
    return np.stack([x, y, local[..., 2]], -1) + boxes[:, None, :3]


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, K) whether each of (N, >=3) LiDAR points lies in each (K, 7) LiDAR box."""
    rel = points[:, None, :3].astype(np.float64) - boxes[None, :, :3]  # (N, K, 3)
    cos, sin = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    # Undo the corner rotation of lidar_box_corners: local = R(ry) applied back.
    u = rel[..., 0] * cos - rel[..., 1] * sin
    v = rel[..., 0] * sin + rel[..., 1] * cos
    return (
        (np.abs(u) <= boxes[:, 3] / 2)
        & (np.abs(v) <= boxes[:, 4] / 2)
        & (rel[..., 2] >= 0)
        & (rel[..., 2] <= boxes[:, 5])
    )


def image_shape(path: str | Path) -> tuple[int, int]:
    """(height, width) of a PNG, from its header (no image library needed)."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise InputError(f"{path}: not a PNG image")
    width, height = struct.unpack(">II", head[16:24])
    return int(height), int(width)


def read_split(path: str | Path) -> list[str]:
    """Frame ids of a split list (``ImageSets/val.txt``: one 6-digit id a line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: split list not found")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise InputError(f"{path}: frame id '{bad[0]}' is not a number")
    return ids


@dataclass
class KittiFrame:
    """One frame of a KITTI object split."""

    frame_id: str
    points: np.ndarray  # (N, 4) float32 LiDAR x y z reflectance
    calib: Calibration
    objects: KittiObjects | None  # None on the testing split (no labels)
    image_path: Path | None
    image_shape: tuple[int, int] | None  # (H, W)


@dataclass
class KittiReader:
    """Frames of ``<root>/<split_dir>`` (``training`` or ``testing``).

    ``skip_broken=True`` skips frames whose files fail to read and counts them in
    :attr:`skipped` (with the reason); by default the first broken frame stops with its error.
    """

    root: Path
    split_dir: str = "training"
    skip_broken: bool = False
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not (self.root / self.split_dir / "velodyne").is_dir():
            raise InputError(f"{self.root / self.split_dir}: no velodyne/ folder (not a KITTI object split)")

    def frame_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.root / self.split_dir / "velodyne").glob("*.bin"))

    def read(self, frame_id: str) -> KittiFrame:
        base = self.root / self.split_dir
        label = base / "label_2" / f"{frame_id}.txt"
        image = base / "image_2" / f"{frame_id}.png"
        points = read_points(base / "velodyne" / f"{frame_id}.bin")
        return KittiFrame(
            frame_id=frame_id,
            points=points,
            calib=read_calib(base / "calib" / f"{frame_id}.txt"),
            objects=read_label(label) if (base / "label_2").is_dir() else None,
            image_path=image if image.is_file() else None,
            image_shape=image_shape(image) if image.is_file() else None,
        )

    def frames(self, frame_ids: list[str] | None = None) -> list[KittiFrame]:
        """Read the frames (all, or the ids given); broken ones skipped only if asked."""
        out = []
        for frame_id in self.frame_ids() if frame_ids is None else frame_ids:
            try:
                out.append(self.read(frame_id))
            except InputError as err:
                if not self.skip_broken:
                    raise
                self.skipped[frame_id] = str(err)
        return out
