"""Test helper: a short silent AAC file, the audio source for the tests that check audio is carried over."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_silent_aac(path: Path) -> Path:
    """Write about one second of mono silence at 8 kHz to ``path`` (an .mp4/.m4a name) and return it."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
