from pathlib import Path

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util.tensor_util import make_ndarray
from torch.utils.tensorboard import SummaryWriter

from attnlab.runs.tensorboard import drop_steps_from


def _steps(tb: Path) -> list[tuple[str, int, float]]:
    return [
        (v.tag, e.step, round(float(make_ndarray(v.tensor)), 3))
        for path in sorted(tb.glob("events.out.tfevents.*"))
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
