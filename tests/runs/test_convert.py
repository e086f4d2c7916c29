"""Foreign checkpoints: safe reading, key rules, the one-line fit check (attnlab.runs.convert)."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from attnlab.errors import InputError
from attnlab.runs.convert import load_foreign, read_state_dict, rename_key, rename_keys
from attnlab.state_dicts import check_state_dict, load_state


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)


def foreign_state() -> dict[str, torch.Tensor]:
    """Tiny's tensors under another library's names, as a DataParallel checkpoint has them."""
    ours = Tiny().state_dict()
    rename = {"stem.": "features.conv0.", "norm.": "features.bn0.", "fc.": "classifier."}
    state = {}
    for key, value in ours.items():
        prefix = next(p for p in rename if key.startswith(p))
        state["module." + rename[prefix] + key.removeprefix(prefix)] = value + 1
    return state


RULES = [
    (r"^features\.conv(\d)\.", "stem."),
    (r"^features\.bn(\d)\.", lambda m: "norm." if m[1] == "0" else f"norm{m[1]}."),
    (r"^classifier\.", "fc."),
]


def test_rules_apply_in_order_each_to_what_the_ones_before_left():
    rules = [(r"^a\.", "b."), (r"^b\.(\d+)\.", lambda m: f"c.{int(m[1]) + 1}."), (r"\.old\.", ".new.")]
    assert rename_key("a.0.old.weight", rules) == "c.1.new.weight"
    assert rename_key("b.7.x", rules) == "c.8.x"
    assert rename_key("unmatched.weight", rules) == "unmatched.weight"


def test_a_none_replacement_drops_the_key():
    rules = [(r"^unused\.", None), (r"^x\.", "y.")]
    state = {"unused.weight": torch.zeros(1), "x.weight": torch.ones(1)}
    renamed, origin = rename_keys(state, rules)
    assert list(renamed) == ["y.weight"] and origin == {"y.weight": "x.weight"}


def test_two_keys_that_become_one_fail_with_one_line():
    with pytest.raises(InputError, match=r"a\.w and b\.w both become c\.w"):
        rename_keys({"a.w": torch.zeros(1), "b.w": torch.zeros(1)}, [(r"^[ab]\.", "c.")])


def test_loads_a_wrapped_dataparallel_checkpoint(tmp_path: Path):
    state = foreign_state()
    torch.save({"epoch": 3, "state_dict": state, "best_acc": 0.5}, tmp_path / "checkpoint.pth.tar")
    model = Tiny()
    load_foreign(
        model,
        tmp_path / "checkpoint.pth.tar",
        RULES,
        "test checkpoint",
        unwrap=("model", "state_dict"),
        strip=("module.",),
    )
    assert torch.equal(model.stem.weight, state["module.features.conv0.weight"])
    assert torch.equal(model.norm.running_var, state["module.features.bn0.running_var"])
    assert torch.equal(model.fc.bias, state["module.classifier.bias"])


def test_reads_safetensors_and_the_legacy_pickle_format(tmp_path: Path):
    state = {"a.weight": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2])}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("w.safetensors", "legacy.pt"):
        read = read_state_dict(tmp_path / name, "weights")
        assert read.keys() == state.keys() and all(torch.equal(read[k], state[k]) for k in state)


def test_strip_removes_each_prefix_once(tmp_path: Path):
    torch.save({"module.a.module.w": torch.zeros(1), "b": torch.zeros(1)}, tmp_path / "s.pt")
    assert set(read_state_dict(tmp_path / "s.pt", "weights", strip=("module.",))) == {"a.module.w", "b"}


def test_the_fit_check_names_counts_and_the_first_few_keys():
    expected = Tiny().state_dict()
    state = dict(expected)
    for key in ("norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
        del state[key]
    state["extra.weight"] = torch.zeros(1)
    state["fc.weight"] = torch.zeros(4, 2)
    with pytest.raises(InputError) as err:
        check_state_dict(expected, state, "weights w.pt")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("weights w.pt does not fit the model: 4 missing keys (")
    assert "norm.bias, norm.running_mean, norm.running_var, ..." in message  # sorted, first three
    assert "1 unexpected keys (extra.weight)" in message
    assert "1 of another shape (fc.weight has shape (4, 2), expected (3, 2))" in message


def test_the_fit_check_names_the_checkpoints_own_keys():
    state, origin = rename_keys({k.removeprefix("module."): v for k, v in foreign_state().items()}, RULES)
    state["fc.weight"] = torch.zeros(5, 2)
    state["head.weight"] = torch.zeros(1)
    origin["head.weight"] = "classifier2.weight"
    with pytest.raises(
        InputError,
        match=r"0 missing keys, 1 unexpected keys \(classifier2.weight\), "
        r"1 of another shape \(classifier.weight has shape \(5, 2\)",
    ):
        check_state_dict(Tiny().state_dict(), state, "ckpt", origin=origin)


def test_load_state_loads_only_a_fitting_state():
    source, target = Tiny(), Tiny()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    partial = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    with pytest.raises(InputError, match="2 missing keys"):
        load_state(target, partial, "weights")
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    load_state(target, source.state_dict(), "weights")
    assert torch.equal(target.fc.weight, source.fc.weight)


def test_missing_corrupt_and_non_state_dict_files_fail_with_one_line(tmp_path: Path):
    with pytest.raises(InputError, match="test checkpoint not found"):
        read_state_dict(tmp_path / "absent.pt", "test checkpoint")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00not a checkpoint" * 10)
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00not a checkpoint" * 10)
    for name in ("corrupt.pt", "corrupt.safetensors"):
        with pytest.raises(InputError, match="cannot read test checkpoint") as err:
            read_state_dict(tmp_path / name, "test checkpoint")
        assert "\n" not in str(err.value)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    torch.save({"a": torch.zeros(1), "b": 3}, tmp_path / "mixed.pt")
    torch.save({"state_dict": [1]}, tmp_path / "wrapped.pt")
    for name in ("list.pt", "mixed.pt", "wrapped.pt"):
        with pytest.raises(InputError, match="is not a state dict of tensors"):
            read_state_dict(tmp_path / name, "test checkpoint", unwrap=("state_dict",))


class _Payload:
    """Unpickling this creates a folder: the test below checks that it never does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, zipped: bool):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": _Payload(marker)}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(InputError, match="cannot read weights") as err:
        read_state_dict(path, "weights")
    assert "\n" not in str(err.value)
    assert not marker.exists()
    # guards the test: a plain unpickler would have run the payload
    torch.load(path, weights_only=False)
    assert marker.is_dir()
