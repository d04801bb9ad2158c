"""The before/after helper the bad-input tests rely on (tests/conftest.py) sees every kind of write."""

import os

import pytest

from tests.conftest import assert_unchanged, tree_state


@pytest.mark.parametrize("change", ["add", "remove", "rewrite", "rename_over", "touch"])
def test_tree_state_sees_each_change(tmp_path, change):
    (tmp_path / "m" / "1").mkdir(parents=True)
    weights = tmp_path / "m" / "1" / "model.onnx"
    weights.write_bytes(b"weights")
    before = tree_state(tmp_path)
    assert_unchanged(before, tree_state(tmp_path), tmp_path)
    if change == "add":
        (tmp_path / "m" / "config.pbtxt").write_text("x")
    elif change == "remove":
        weights.unlink()
    elif change == "rewrite":
        weights.write_bytes(b"other weights")
    elif change == "rename_over":  # an atomic rebuild with the very same bytes
        (tmp_path / "m" / "1" / "tmp").write_bytes(b"weights")
        os.replace(tmp_path / "m" / "1" / "tmp", weights)
    else:
        os.utime(weights, ns=(1, 1))
    with pytest.raises(AssertionError, match="changed"):
        assert_unchanged(before, tree_state(tmp_path), tmp_path)


def test_an_absent_folder_has_no_state(tmp_path):
    assert tree_state(tmp_path / "absent") == {}
