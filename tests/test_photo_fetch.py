"""Fetching the photo pool, on tiny fake packages placed in the download cache (no network)."""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.data import photo_fetch
from tami.data.photo_fetch import DOWNLOAD_DIR, STATE_FILE, fetch_pool, fit_long_side
from tami.data.photo_pool import load_manifest
from tami.errors import FetchError, InputError

REPO = Path(__file__).resolve().parents[1]


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _entry(name: str, source: str, path: str, data: bytes, height: int, width: int, **extra: str) -> dict:
    return {"name": name, "source": source, "path": path, "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data), "width": width, "height": height, "licence": "CC0-1.0", "credit": "test", **extra}


def _source(registry: str, package: str, split: str) -> dict:
    return {"registry": registry, "package": package, "version": "1.0", "split": split, "licence": "CC0-1.0",
            "copyright_file": "LICENSE", "selection": "all"}


class FakeWheel:
    """A one-source manifest whose wheel (three photographs) already sits in ``root/.downloads``."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "pool"
        self.small = _image(30, 40, 0)
        self.large = _image(16, 96, 1)
        self.face = _image(6, 8, 2)  # RGB, stored raw as scipy's face.dat is
        self.files = {"fake/small.png": _png(self.small), "fake/large.png": _png(self.large),
                      "fake/face.dat": bz2.compress(self.face.tobytes())}
        self.photos = [
            _entry("small", "fakepkg", "fake/small.png", self.files["fake/small.png"], 30, 40),
            _entry("large", "fakepkg", "fake/large.png", self.files["fake/large.png"], 16, 96),
            _entry("face", "fakepkg", "fake/face.dat", self.files["fake/face.dat"], 6, 8, format="scipy-face-dat"),
        ]
        self.data = {"format": 1, "max_side": 48, "split_rule": "by source",
                     "pypi_wheel": {"python_version": "3.11", "implementation": "cp", "platforms": []},
                     "sources": {"fakepkg": _source("pypi", "fakepkg", "train")}, "photos": self.photos}
        self.place_archive()

    def place_archive(self) -> Path:
        archive = self.root / DOWNLOAD_DIR / "fakepkg-1.0-py3-none-any.whl"
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w") as wheel:
            for name, data in self.files.items():
                wheel.writestr(name, data)
        return archive

    def manifest(self, tmp_path: Path):
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(self.data), encoding="utf-8")
        return load_manifest(path)


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("fetch_pool tried to download although the archive was there or nothing was missing")
    monkeypatch.setattr(photo_fetch, "download_archive", refuse)


def test_fetch_writes_verified_pngs_and_second_run_skips(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    manifest = fake.manifest(tmp_path)
    events = []
    summary = fetch_pool(fake.root, manifest=manifest, progress=events.append)

    assert sorted(summary.fetched) == ["train/face.png", "train/large.png", "train/small.png"]
    assert summary.per_split == {"train": 3} and summary.per_source == {"fakepkg": 3}
    assert [(e.done, e.status) for e in events] == [(1, "fetched"), (2, "fetched"), (3, "fetched")]
    # Lossless copy of a small photograph; a large one is downscaled to max_side; the raw face array decodes as RGB.
    np.testing.assert_array_equal(cv2.imread(str(fake.root / "train/small.png")), fake.small)
    large = cv2.imread(str(fake.root / "train/large.png"))
    assert large.shape == (8, 48, 3)
    np.testing.assert_array_equal(large, cv2.resize(fake.large, (48, 8), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(cv2.imread(str(fake.root / "train/face.png")), fake.face[:, :, ::-1])
    # Written by tami.frames.write_image: the very bytes of OpenCV's PNG encoding of the decoded (and fitted) photo.
    assert (fake.root / "train/small.png").read_bytes() == _png(fake.small)
    assert (fake.root / "train/large.png").read_bytes() == _png(
        cv2.resize(fake.large, (48, 8), interpolation=cv2.INTER_AREA))
    assert (fake.root / "train/face.png").read_bytes() == _png(np.ascontiguousarray(fake.face[:, :, ::-1]))
    # The archive is deleted once used; the state records where each output came from.
    assert not (fake.root / DOWNLOAD_DIR).exists()
    state = json.loads((fake.root / STATE_FILE).read_text())
    assert state == {f"train/{p['name']}.png": p["sha256"] for p in fake.photos}

    mtime = (fake.root / "train/small.png").stat().st_mtime_ns
    again = fetch_pool(fake.root, manifest=manifest)
    assert again.fetched == [] and len(again.skipped) == 3
    assert (fake.root / "train/small.png").stat().st_mtime_ns == mtime


def test_sha_mismatch_is_one_line_and_leaves_no_file(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    fake.photos[1]["sha256"] = "0" * 64
    with pytest.raises(FetchError) as info:
        fetch_pool(fake.root, manifest=fake.manifest(tmp_path))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("large: sha256 of fakepkg 1.0:fake/large.png is ")
    assert hashlib.sha256(fake.files["fake/large.png"]).hexdigest() in text and "0" * 64 in text
    # The photograph before it was verified and written; the bad one left nothing, not even a temporary file.
    assert sorted(p.name for p in (fake.root / "train").iterdir()) == ["small.png"]
    assert json.loads((fake.root / STATE_FILE).read_text()) == {"train/small.png": fake.photos[0]["sha256"]}


def test_member_missing_from_the_package_is_one_line(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    fake.photos[0]["path"] = "fake/absent.png"
    with pytest.raises(FetchError, match=r"^fakepkg-1\.0-py3-none-any\.whl has no fake/absent\.png .*fakepkg 1\.0$"):
        fetch_pool(fake.root, manifest=fake.manifest(tmp_path))
    assert not (fake.root / "train").exists()


def test_wrong_size_in_manifest_is_caught_after_decoding(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    fake.photos[0]["width"] = 41
    with pytest.raises(FetchError, match="small: fake/small.png decodes to 40x30, the manifest says 41x30"):
        fetch_pool(fake.root, manifest=fake.manifest(tmp_path))


def test_changed_entry_is_refetched_and_removed_entry_deleted(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    fetch_pool(fake.root, manifest=fake.manifest(tmp_path), keep_downloads=True)
    assert (fake.root / DOWNLOAD_DIR).is_dir()
    # A new version of "small" and "face" dropped from the manifest.
    fake.small = _image(30, 40, 7)
    fake.files["fake/small.png"] = _png(fake.small)
    fake.place_archive()
    fake.data["photos"] = [_entry("small", "fakepkg", "fake/small.png", fake.files["fake/small.png"], 30, 40),
                           fake.photos[1]]
    summary = fetch_pool(fake.root, manifest=fake.manifest(tmp_path))
    assert summary.fetched == ["train/small.png"] and summary.skipped == ["train/large.png"]
    assert summary.removed == ["train/face.png"] and not (fake.root / "train/face.png").exists()
    np.testing.assert_array_equal(cv2.imread(str(fake.root / "train/small.png")), fake.small)


def test_only_requested_splits_are_fetched(tmp_path: Path, no_downloads: None) -> None:
    fake = FakeWheel(tmp_path)
    fake.data["sources"]["other"] = _source("pypi", "other", "test")
    fake.photos[2]["source"] = "other"
    summary = fetch_pool(fake.root, manifest=fake.manifest(tmp_path), splits=["train"])
    assert sorted(summary.fetched) == ["train/large.png", "train/small.png"]
    assert not (fake.root / "test").exists()
    with pytest.raises(InputError, match="unknown photo-pool split 'dev'"):
        fetch_pool(fake.root, manifest=fake.manifest(tmp_path), splits=["dev"])


def test_destination_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "pool"
    target.write_text("not a folder")
    with pytest.raises(InputError, match="photo pool destination .* is a file; give a folder"):
        fetch_pool(target)


def test_missing_registry_client_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    source = load_manifest().sources["mate-backgrounds"]
    with pytest.raises(FetchError, match=r"^apt-get not found: run `apt-get update` first; .*Debian 12"):
        photo_fetch.download_archive(source, tmp_path / "cache", {})
    # The temporary download folder is cleaned up.
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_debian_package_is_read_with_dpkg_deb(tmp_path: Path, no_downloads: None) -> None:
    image = _image(20, 24, 3)
    data = _png(image)
    tree = tmp_path / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text("Package: fake-backgrounds\nVersion: 1:1.0-1\nArchitecture: all\n"
                                             "Maintainer: test <test@example.org>\nDescription: test\n")
    (tree / "usr/share/backgrounds").mkdir(parents=True)
    (tree / "usr/share/backgrounds/photo.png").write_bytes(data)
    (tree / "usr/share/backgrounds/link.png").symlink_to("photo.png")
    root = tmp_path / "pool"
    (root / DOWNLOAD_DIR).mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree),
                    str(root / DOWNLOAD_DIR / "fake-backgrounds_1%3a1.0-1_all.deb")], check=True, capture_output=True)
    source = _source("debian", "fake-backgrounds", "test") | {"version": "1:1.0-1"}
    manifest = {"format": 1, "max_side": 1920, "pypi_wheel": {}, "sources": {"fake-backgrounds": source},
                "photos": [_entry("photo", "fake-backgrounds", "usr/share/backgrounds/photo.png", data, 20, 24)]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    summary = fetch_pool(root, manifest=load_manifest(path), keep_downloads=True)
    assert summary.fetched == ["test/photo.png"]
    np.testing.assert_array_equal(cv2.imread(str(root / "test/photo.png")), image)

    manifest["photos"][0].update(name="link", path="usr/share/backgrounds/link.png")
    path.write_text(json.dumps(manifest))
    with pytest.raises(FetchError, match="link.png is not a regular file"):
        fetch_pool(root, manifest=load_manifest(path))


def test_fit_long_side_keeps_aspect_and_leaves_small_images_alone() -> None:
    wide = np.zeros((1000, 3000, 3), np.uint8)
    assert fit_long_side(wide, 1920).shape == (640, 1920, 3)
    tall = np.zeros((2500, 1000, 3), np.uint8)
    assert fit_long_side(tall, 1920).shape == (1920, 768, 3)
    small = np.zeros((1920, 1080, 3), np.uint8)
    assert fit_long_side(small, 1920) is small


def test_cli_reports_errors_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("fetch_photos", REPO / "tools" / "fetch_photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    target = tmp_path / "file"
    target.write_text("x")
    assert module.main([str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: photo pool destination") and err.count("\n") == 1
