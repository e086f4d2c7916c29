from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util.tensor_util import make_ndarray
from torch.utils.tensorboard import SummaryWriter

from attnlab.runs.tensorboard import drop_steps_from, event_files


def _created(path: Path) -> float:
    """When an event file was opened (its first record): file names end in a per-process counter
    that sorts 10 before 9, so names alone do not order the writers of one long test process."""
    return next(iter(EventFileLoader(str(path)).Load())).wall_time


def _steps(tb: Path) -> list[tuple[str, int, float]]:
    return [
        (v.tag, e.step, round(float(make_ndarray(v.tensor)), 3))
        for path in sorted(tb.glob("events.out.tfevents.*"), key=_created)
        for e in EventFileLoader(str(path)).Load()
        for v in e.summary.value
    ]


def _log(tb: Path, steps: range, value: float) -> None:
    with SummaryWriter(tb) as writer:
        for step in steps:
            writer.add_scalar("train/loss", value + step, step)


def test_steps_from_the_checkpoint_on_are_cut_and_relogged_once(tmp_path: Path):
    _log(tmp_path, range(10), 0.0)  # the interrupted process got to step 9
    drop_steps_from(tmp_path, 6)  # its last checkpoint was at step 6
    _log(tmp_path, range(6, 10), 0.5)  # the resumed process
    assert _steps(tmp_path) == [("train/loss", s, s + (0.5 if s >= 6 else 0.0)) for s in range(10)]


def test_a_record_cut_short_by_a_kill_is_removed(tmp_path: Path):
    _log(tmp_path, range(4), 0.0)
    (events,) = tmp_path.glob("events.out.tfevents.*")
    whole = events.read_bytes()
    events.write_bytes(whole[:-7])  # the last record's tail never reached the disk
    drop_steps_from(tmp_path, 100)
    assert _steps(tmp_path) == [("train/loss", s, float(s)) for s in range(3)]
    _log(tmp_path, range(3, 5), 0.0)  # a file the resumed process appends to reads whole
    assert [s for _, s, _ in _steps(tmp_path)] == [0, 1, 2, 3, 4]


def test_files_with_nothing_to_cut_are_left_alone(tmp_path: Path):
    _log(tmp_path, range(3), 0.0)
    (events,) = tmp_path.glob("events.out.tfevents.*")
    before = events.stat().st_mtime_ns
    drop_steps_from(tmp_path, 3)
    assert events.stat().st_mtime_ns == before


def test_event_files_come_in_the_order_they_were_opened(tmp_path: Path):
    """Writers 9 and 10 of one process: by name "...10" sorts first, by opening it comes second."""
    _log(tmp_path / "a", range(2), 0.0)
    _log(tmp_path / "b", range(2, 4), 0.0)
    (first,) = (tmp_path / "a").glob("events.*")
    (second,) = (tmp_path / "b").glob("events.*")
    first.rename(tmp_path / "events.out.tfevents.1700000000.host.42.9")
    second.rename(tmp_path / "events.out.tfevents.1700000000.host.42.10")
    assert [p.name[-2:] for p in sorted(tmp_path.glob("events.*"))] == ["10", ".9"]
    assert [p.name[-2:] for p in event_files(tmp_path)] == [".9", "10"]
