"""Where an enhanced video goes: a video file, a frame folder or a single image, all behind one writer interface
(``write`` / ``close`` / ``abort``; nothing partial is left on abort)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frames import write_image
from .video import IMAGE_SUFFIXES, VideoInfo, VideoWriter, is_folder_target, open_writer

logger = logging.getLogger(__name__)


def open_output(path: Path, info: VideoInfo, audio: Path | None) -> VideoWriter | ImageWriter:
    """A writer for ``path``: one image file for an image input written to an image suffix, else video/folder.

    16-bit input (and 10/12-bit video) stays 16-bit where the output can hold it (png/tif images, frame folders).
    """
    try:
        if info.kind == "image" and path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageWriter(path, info.bit_depth)
        folder = is_folder_target(path)
        if info.bit_depth == 16 and not folder:
            logger.info("%s: input deeper than 8 bits written as 8-bit video; give a folder path to keep 16 bits",
                        path.name)
        return open_writer(path, info.fps, audio_from=audio, bit_depth=info.bit_depth if folder else 8,
                           time_base=None if folder else info.time_base)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable output path") from None


class ImageWriter:
    """Writer of a single-image output (png/jpg/bmp/tif, or float32 RGB ``.npy``) with the video writers' interface:
    the frame is kept and written atomically on :meth:`close` (:func:`tami.frames.write_image`).

    ``bit_depth`` 16 writes png and tif as 16-bit (other formats cannot hold it and get 8 bits).
    """

    def __init__(self, path: Path, bit_depth: int = 8) -> None:
        self.path = path
        self.bit_depth = bit_depth
        self._frame: np.ndarray | None = None

    def write(self, frame: np.ndarray, name: str | None = None, pts: int | None = None) -> None:
        self._frame = frame

    def close(self) -> None:
        if self._frame is None:
            raise InputError(f"no frame was written to {self.path}; nothing saved")
        write_image(self.path, self._frame, bits=self.bit_depth)
        self._frame = None

    def abort(self) -> None:
        self._frame = None
