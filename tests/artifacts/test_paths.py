"""The safe-path rules: nothing a client sends can name a key outside its run's prefix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runstream.artifacts.local import LocalStore
from runstream.schemas.artifact_paths import UnsafePath, artifact_dir, artifact_path, object_key

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "path",
    ["", "..", "../x", "a/../../x", "a/..", "/etc/passwd", "a\\..\\b", "C:\\x", "a\x00b", "a//b", "./a", "a/./b",
     "a/", "x" * 1025, "a\nb", "x" * 256, "a/" + "é" * 128],
)  # fmt: skip
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(UnsafePath):
        artifact_path(path)


@pytest.mark.parametrize(
    "path", ["model.pkl", "a/b/c.txt", "..hidden", "a..b/c", "weird name ü.bin", "/".join(["x" * 255] * 4)]
)
def test_safe_paths_pass_unchanged(path: str) -> None:
    assert artifact_path(path) == path


def test_folders_and_run_ids() -> None:
    assert artifact_dir("") == "" and artifact_dir("plots/") == "plots"
    with pytest.raises(UnsafePath):
        artifact_dir("../plots")
    assert object_key(RUN, "a/b") == f"{RUN}/artifacts/a/b"
    for bad_run in ["..", RUN.upper(), RUN + "/..", ""]:
        with pytest.raises(UnsafePath):
            object_key(bad_run, "a")


@given(st.text(alphabet=st.sampled_from(["a", "/", ".", "\\", "\x00", "b"]), max_size=12))
def test_no_accepted_path_leaves_the_run_prefix(path: str) -> None:
    try:
        key = object_key(RUN, path)
    except UnsafePath:
        return
    resolved = (Path("/root") / key).resolve()
    assert resolved.is_relative_to(Path(f"/root/{RUN}/artifacts")) and resolved != Path(f"/root/{RUN}/artifacts")


def test_local_store_refuses_keys_resolving_outside_its_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    (tmp_path / "root" / RUN).mkdir(parents=True)
    (tmp_path / "root" / RUN / "artifacts").symlink_to(tmp_path)  # a link planted inside the root
    with pytest.raises(UnsafePath):
        store.size(f"{RUN}/artifacts/secret")
    with pytest.raises(UnsafePath):
        store.upload("../outside", io.BytesIO(b"x"))
    assert not (tmp_path / "outside").exists()
