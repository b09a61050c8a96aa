"""atomic_path: outputs appear only on success, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from tami.atomic import atomic_path


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_appears_on_success_with_umask_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    mask = os.umask(0)
    os.umask(mask)
    assert _mode(target) == 0o666 & ~mask
    assert list(tmp_path.iterdir()) == [target]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_directory_replaces_old_one_only_on_success(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "new.png").write_bytes(b"new")
            raise RuntimeError("fail")
    assert [p.name for p in target.iterdir()] == ["old.png"]
    with atomic_path(target, directory=True) as tmp:
        (tmp / "new.png").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["new.png"]
    assert _mode(target) & 0o755 == 0o755


def test_safetensors_exports_respect_the_umask(tmp_path):
    from tami import backbones

    old = os.umask(0o022)
    try:
        path = backbones.save(backbones.create("retinexformer", n_feat=8, num_blocks=[1, 1, 1]),
                              tmp_path / "b.safetensors")
    finally:
        os.umask(old)
    assert _mode(path) == 0o644  # safetensors itself creates private 0600 files
