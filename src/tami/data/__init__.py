"""Data: video/frame-folder I/O (:mod:`.video`), paired datasets (:mod:`.datasets`), synthetic low-light video
(:mod:`.synthetic`), SDSD conversion (:mod:`.sdsd_convert`) and dataset checks (:mod:`.validate`)."""

from __future__ import annotations

from .video import VideoInfo, VideoReader, VideoWriter, open_video, open_writer, read_image

__all__ = ["VideoInfo", "VideoReader", "VideoWriter", "open_video", "open_writer", "read_image"]
