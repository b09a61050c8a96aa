"""Test helpers: small videos with the defects of real-world files, built with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tami.data.video import open_writer


def noisy_clip(path: Path, count: int = 8, size: tuple[int, int] = (32, 48), fps: float = 10,
               audio: Path | None = None) -> Path:
    """Frames of mean brightness 0.1, 0.2, ... with noise (so every packet is about the same size)."""
    rng = np.random.default_rng(0)
    with open_writer(path, fps=fps, audio_from=audio) as writer:
        for i in range(count):
            level = 0.1 * (i % 9 + 1)
            writer.write(np.clip(level + rng.uniform(-0.05, 0.05, (*size, 3)), 0, 1).astype(np.float32))
    return path


def cut_tail(source: Path, target: Path, keep: float = 0.75) -> Path:
    """``source`` without the end of its bytes: the index (at the front) still claims every frame."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def corrupt_packet(source: Path, target: Path, index: int) -> Path:
    """Copy ``source`` (every stream) with video packet ``index`` replaced by zeros of its size (a damaged packet)."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        outputs = {stream.index: dst.add_stream_from_template(stream) for stream in src.streams}  # audio too
        seen = 0
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                if seen == index:
                    damaged = av.Packet(bytes(packet.size))
                    damaged.pts, damaged.dts, damaged.time_base = packet.pts, packet.dts, packet.time_base
                    damaged.stream = packet.stream
                    packet = damaged
                seen += 1
            packet.stream = outputs[packet.stream.index]
            dst.mux(packet)
    return target
