"""The shipped photo-pool manifest and the paths API (no network, no photographs needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tami.data.photo_pool import MANIFEST_PATH, SPLITS, load_manifest, photo_paths
from tami.data.synthetic import BUILTIN_FILES, BUILTIN_SPLITS
from tami.errors import InputError


def _raw() -> dict:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_shipped_manifest_has_enough_photographs_in_every_split() -> None:
    manifest = load_manifest()
    counts = {split: len(manifest.select(split)) for split in SPLITS}
    assert len(manifest.photos) >= 60
    assert counts["test"] >= 8
    assert counts["train"] >= 30 and counts["val"] >= 8
    assert sum(counts.values()) == len(manifest.photos) == len(manifest.select("all"))
    assert manifest.max_side == 1920


def test_splits_are_disjoint_by_source_and_by_content() -> None:
    manifest = load_manifest()
    sources = {split: {p.source.name for p in manifest.select(split)} for split in SPLITS}
    packages = {split: {manifest.sources[s].package for s in sources[split]} for split in SPLITS}
    credits = {split: {p.credit for p in manifest.select(split)} for split in SPLITS}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not sources[a] & sources[b], (a, b)
        assert not packages[a] & packages[b], (a, b)
    # No photographer of the test set appears in training.
    assert not credits["test"] & credits["train"]
    # Every source's photographs are all in its own split, and every source is used.
    assert {p.source.name for p in manifest.photos} == set(manifest.sources)


def test_every_entry_has_a_licence_credit_and_verifiable_digest() -> None:
    manifest = load_manifest()
    for photo in manifest.photos:
        assert photo.licence.strip() and photo.credit.strip(), photo.name
        assert len(photo.sha256) == 64 and photo.bytes > 0 and photo.width >= 256 and photo.height >= 256, photo.name
    for source in manifest.sources.values():
        assert source.licence.strip() and source.copyright_file.strip() and source.selection.strip(), source.name
        assert source.registry in ("debian", "pypi") and source.version.strip()
    assert len({p.sha256 for p in manifest.photos}) == len(manifest.photos)
    assert "split" in manifest.split_rule.lower()


def test_demo_held_out_photographs_are_never_in_training() -> None:
    manifest = load_manifest()
    by_path = {p.path: p for p in manifest.photos}
    for name in BUILTIN_SPLITS["test"]:
        package, relative = BUILTIN_FILES[name]
        matches = [p for path, p in by_path.items() if path.endswith(relative) and path.startswith(package)]
        assert len(matches) == 1, name
        assert matches[0].split != "train", name


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["photos"][0].pop("licence"), "needs a non-empty string 'licence'"),
    (lambda d: d["photos"][1].update(sha256=d["photos"][0]["sha256"]), "have the same sha256"),
    (lambda d: d["photos"][1].update(name=d["photos"][0]["name"]), "have the same name"),
    (lambda d: d["photos"][0].update(source="nowhere"), "names source 'nowhere'"),
    (lambda d: d["photos"][0].update(sha256="abc"), "expected 64 lower-case hex digits"),
    (lambda d: d["photos"][0].update(width=0), "needs a positive integer 'width', got 0"),
    (lambda d: d["photos"][0].update(path="../etc/passwd"), "expected a relative path inside the package"),
    (lambda d: next(iter(d["sources"].values())).update(split="holdout"), "has split 'holdout'"),
    (lambda d: next(iter(d["sources"].values())).update(registry="conda"), "has registry 'conda'"),
    (lambda d: d.update(format=2), "not a format-1 photo manifest"),
])
def test_malformed_manifest_is_a_one_line_error(tmp_path: Path, edit, message: str) -> None:
    data = _raw()
    edit(data)
    with pytest.raises(InputError, match="photo manifest") as info:
        load_manifest(_write(tmp_path, data))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_manifest_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": 1,\n oops}', encoding="utf-8")
    with pytest.raises(InputError, match=r"is not valid JSON: .* at line 2"):
        load_manifest(path)


def test_photo_paths_without_a_pool_names_the_fetch_command(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    with pytest.raises(InputError) as info:
        photo_paths(root, "test")
    text = str(info.value)
    assert text.startswith(f"no photo pool at {root}")
    assert f"python tools/fetch_photos.py {root}" in text and "\n" not in text


def test_photo_paths_counts_missing_photographs_and_returns_manifest_order(tmp_path: Path) -> None:
    manifest = load_manifest()
    test_photos = manifest.select("test")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / test_photos[0].filename).write_bytes(b"png")
    with pytest.raises(InputError) as info:
        photo_paths(tmp_path, "test", manifest=manifest)
    assert f"lacks {len(test_photos) - 1} of the {len(test_photos)} test photographs " \
           f"(first: test/{test_photos[1].filename})" in str(info.value)
    assert "python tools/fetch_photos.py" in str(info.value)
    for photo in test_photos[1:]:
        (tmp_path / "test" / photo.filename).write_bytes(b"png")
    paths = photo_paths(tmp_path, "test", manifest=manifest)
    assert paths == [tmp_path / "test" / p.filename for p in test_photos]
    # The other splits are still missing.
    with pytest.raises(InputError, match="lacks"):
        photo_paths(tmp_path, "all", manifest=manifest)


def test_unknown_split_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown photo-pool split 'validation'; expected one of train, val, test"):
        photo_paths(tmp_path, "validation")
