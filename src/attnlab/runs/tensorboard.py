"""TensorBoard logs of a resumed run.

A process killed after its last checkpoint has already logged the steps that the resumed
process will log again. Before the run continues, those events are cut from the event
files, so every reader (TensorBoard, tbparse, the report) sees each step once, with the
values of the process that finished the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.record_writer import RecordWriter

from attnlab.files import atomic_write


def event_files(tb_dir: Path) -> list[Path]:
    """The event files under ``tb_dir`` in the order they were opened (their first record's time).

    Not by name: a name ends in a per-process counter, and "...10" sorts before "...9"."""

    def opened(path: Path) -> float:
        first = next(iter(RawEventFileLoader(str(path)).Load()), None)
        return 0.0 if first is None else Event.FromString(first).wall_time

    return sorted(tb_dir.rglob("events.out.tfevents.*"), key=opened)


def drop_steps_from(tb_dir: Path, step: int) -> None:
    """Remove every event at ``step`` or later from the event files under ``tb_dir``.

    A record cut short by the kill is dropped too (the loader stops before it).
    """
    for path in event_files(tb_dir):
        records = list(RawEventFileLoader(str(path)).Load())
        kept = [r for r in records if Event.FromString(r).step < step]
        if len(kept) < len(records) or _has_trailing_bytes(path, records):
            atomic_write(path, lambda f, kept=kept: _write(f, kept))


def _write(f: BinaryIO, records: list[bytes]) -> None:
    writer = RecordWriter(f)
    for record in records:
        writer.write(record)


def _has_trailing_bytes(path: Path, records: list[bytes]) -> bool:
    """True when the file holds more than its whole records (a record cut short)."""
    framing = 16  # per record: length (8 bytes), its CRC (4), the data's CRC (4)
    return path.stat().st_size > sum(len(r) + framing for r in records)
