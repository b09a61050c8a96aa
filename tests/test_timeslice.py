"""tami.timeslice and `tami timeslice`: exact slices of a known moving edge, grid layout and labels, frame
alignment by name vs by index, size and line errors, streaming, and the CLI outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.cli.main import main
from tami.data.video import open_writer
from tami.errors import InputError
from tami.timeslice import (
    SliceLine,
    compose_grid,
    draw_line,
    extract_slice,
    parse_frames,
    save_time_slices,
    time_slices,
)

T, H, W = 8, 12, 20


def edge_video(offset: int = 0) -> np.ndarray:
    """``(T, H, W, 3)`` uint8: frame t is white left of column ``3 + 2t + offset``; rows carry a ramp in green."""
    video = np.zeros((T, H, W, 3), np.uint8)
    video[:, :, :, 1] = (np.arange(H) * 20)[None, :, None]
    for t in range(T):
        video[t, :, :3 + 2 * t + offset, 0] = 255
    return video


def write_folder(folder: Path, video: np.ndarray, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for frame, name in zip(video, names):
        cv2.imwrite(str(folder / f"{name}.png"), frame[:, :, ::-1])
    return folder


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_horizontal_slice_of_moving_edge_is_exact() -> None:
    video = edge_video()
    got = extract_slice(video, SliceLine("y", 5))
    expected = np.zeros((T, W, 3), np.uint8)
    expected[:, :, 1] = 100
    for t in range(T):
        expected[t, :3 + 2 * t, 0] = 255
    np.testing.assert_array_equal(got, expected)


def test_vertical_slice_with_span_and_stripe_is_exact() -> None:
    video = edge_video()
    got = extract_slice(iter(video), SliceLine("x", 8, 2, 10), stripe=3)
    assert got.shape == (8, T * 3, 3)
    # frame t covers columns 3t..3t+2 of the slice, taken from frame columns 7..9 (a band centred on x=8)
    for t in range(T):
        band = got[:, 3 * t:3 * t + 3]
        np.testing.assert_array_equal(band, video[t, 2:10, 7:10])
    # the edge passes x=8 between frames 2 (edge at 7) and 3 (edge at 9)
    assert got[0, 3 * 2 + 1, 0] == 0 and got[0, 3 * 3 + 1, 0] == 255


def test_stripe_band_stays_inside_the_frame() -> None:
    video = edge_video()
    got = extract_slice(video, SliceLine("x", 0), stripe=4)
    np.testing.assert_array_equal(got[:, :4], video[0, :, 0:4])


def test_slice_through_png_folders_and_cli_outputs(tmp_path: Path) -> None:
    video = edge_video()
    names = [f"{i:04d}" for i in range(T)]
    write_folder(tmp_path / "GT", video, names)
    write_folder(tmp_path / "shifted", edge_video(offset=1), names)
    out = tmp_path / "out"
    code = main(["-q", "timeslice", "--method", f"shifted={tmp_path / 'shifted'}", "--method",
                 f"GT={tmp_path / 'GT'}", "--y", "5", "--frames", "2:6", "--stripe", "2", "-o", str(out)])
    assert code == 0
    got = read_png(out / "GT_slice.png")
    assert got.shape == (4 * 2, W, 3)  # 2 rows per frame: rows 4 and 5 of frames 2..5
    np.testing.assert_array_equal(got[0::2], video[2:6, 4])
    np.testing.assert_array_equal(got[1::2], video[2:6, 5])
    line = read_png(out / "GT_line.png")
    assert (line[5, :, 0] == 255).all() and (line[5, :, 1:] == 0).all()  # the red line on its row
    # the line image shows the first selected frame
    assert (read_png(out / "shifted_line.png")[0] == edge_video(offset=1)[2, 0]).all()
    grid = read_png(out / "grid.png")
    assert grid.shape[1] > 2 * W and (out / "shifted_slice.png").is_file()


def test_alignment_by_name_matches_frames_with_the_same_name(tmp_path: Path) -> None:
    video = edge_video()
    gt = write_folder(tmp_path / "gt", video, [f"f{i}" for i in range(T)])
    # the method lacks frame f0 and has an extra f9: by position it would be off by one
    other = write_folder(tmp_path / "other", video[1:], [f"f{i}" for i in range(1, T)])
    with_extra = tmp_path / "other" / "f9.png"
    cv2.imwrite(str(with_extra), video[0][:, :, ::-1])
    result = time_slices({"other": other, "GT": gt}, SliceLine("y", 5), frames=slice(1, 5))
    assert result.alignment == "name"
    assert result.labels == ["f1", "f2", "f3", "f4"]
    sliced = {m.name: m for m in result.methods}
    np.testing.assert_array_equal(sliced["other"].slice, sliced["GT"].slice)
    assert sliced["GT"].frames == [1, 2, 3, 4] and sliced["other"].frames == [0, 1, 2, 3]


def test_alignment_falls_back_to_index_when_names_differ(tmp_path: Path) -> None:
    video = edge_video()
    gt = write_folder(tmp_path / "gt", video, [f"{210 + i:04d}" for i in range(T)])
    other = write_folder(tmp_path / "other", video, [str(i) for i in range(T)])
    result = time_slices({"GT": gt, "other": other}, SliceLine("x", 9))
    assert result.alignment == "index"
    assert result.labels[0] == "0210"
    np.testing.assert_array_equal(result.methods[0].slice, result.methods[1].slice)


def test_in_memory_iterators_of_different_lengths_use_common_frames() -> None:
    video = edge_video()
    result = time_slices({"a": video, "b": (f for f in video[:5])}, SliceLine("y", 0))
    assert result.alignment == "index" and len(result.labels) == 5
    np.testing.assert_array_equal(result.methods[1].slice, extract_slice(video[:5], SliceLine("y", 0)) / 255.0)


def test_slicing_streams_and_stops_after_the_last_selected_frame() -> None:
    video = edge_video()
    pulled = []

    def frames():
        for i, frame in enumerate(video):
            pulled.append(i)
            yield frame

    result = time_slices({"a": frames()}, SliceLine("y", 3), frames=slice(0, 3))
    assert result.methods[0].slice.shape == (3, W, 3)
    assert pulled == [0, 1, 2]


def test_mismatched_sizes_are_a_clear_error(tmp_path: Path) -> None:
    small = np.zeros((4, H, W - 2, 3), np.uint8)
    with pytest.raises(InputError, match=r"'small' has 18x12 frames, method 'a' has 20x12"):
        time_slices({"a": edge_video(), "small": small}, SliceLine("y", 0))
    gt = write_folder(tmp_path / "gt", edge_video(), [str(i) for i in range(T)])
    b = write_folder(tmp_path / "b", small, ["0"])
    code = main(["-q", "timeslice", "--method", f"GT={gt}", "--method", f"b={b}", "--x", "3",
                 "-o", str(tmp_path / "out")])
    assert code == 1 and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("line", "message"), [
    (SliceLine("x", W), r"--x 20 is outside the 20x12 frame"),
    (SliceLine("y", -1), r"--y -1 is outside"),
    (SliceLine("x", 3, 5, 5), r"--from 5 --to 5"),
    (SliceLine("y", 3, 0, W + 1), r"--to 21"),
])
def test_line_outside_the_frame(line: SliceLine, message: str) -> None:
    with pytest.raises(InputError, match=message):
        time_slices({"a": edge_video()}, line)


def test_stripe_wider_than_the_frame() -> None:
    with pytest.raises(InputError, match=r"--stripe 21 must be between 1 and the frame width \(20\)"):
        time_slices({"a": edge_video()}, SliceLine("x", 3), stripe=W + 1)


def test_parse_frames() -> None:
    assert parse_frames("2:6") == slice(2, 6)
    assert parse_frames(":6") == slice(None, 6) and parse_frames("3:") == slice(3, None)
    assert parse_frames("4") == slice(4, 5) and parse_frames(None) is None
    with pytest.raises(InputError, match="A:B"):
        parse_frames("a-b")


def test_grid_layout_and_labels() -> None:
    a = np.full((10, 30, 3), 0.5, np.float32)
    b = np.full((16, 12, 3), 200, np.uint8)
    c = np.full((6, 8, 3), 1.0, np.float32)
    grid = compose_grid([("alpha", a), ("a much longer label", b), ("c", c)], columns=2, gap=4)
    boxes = {label: (top, left, h, w) for label, top, left, h, w in grid.boxes}
    top_a, left_a, h_a, w_a = boxes["alpha"]
    top_b, left_b, _, _ = boxes["a much longer label"]
    top_c, left_c, _, _ = boxes["c"]
    assert top_a == top_b and left_c == left_a and top_c > top_a + 16  # row-major, two columns
    assert left_b >= left_a + w_a + 4
    label_width = cv2.getTextSize("a much longer label", cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
    assert grid.image.shape[1] >= left_b + label_width  # column widened to fit its label
    for label, top, left, h, w in grid.boxes:
        image = {"alpha": a, "a much longer label": b, "c": c}[label]
        expected = image if image.dtype == np.uint8 else np.rint(image * 255).astype(np.uint8)
        np.testing.assert_array_equal(grid.image[top:top + h, left:left + w], expected)
        bar = grid.image[top - 20:top, left:left + max(w, 20)]
        assert bar.max() > 150, f"no label text drawn above {label!r}"
    # a different label draws different pixels
    other = compose_grid([("beta", a), ("a much longer label", b), ("c", c)], columns=2, gap=4)
    assert not np.array_equal(other.image, grid.image)
    assert compose_grid([(str(i), c) for i in range(10)]).boxes[5][1] > compose_grid(
        [(str(i), c) for i in range(10)]).boxes[4][1]  # 10 items: two rows of 5


def test_draw_line_and_save(tmp_path: Path) -> None:
    frame = np.zeros((H, W, 3), np.float32)
    out = draw_line(frame, SliceLine("x", 7, 2, 9), thickness=1)
    assert (out[2:9, 7] == [255, 0, 0]).all() and out[:2, 7].max() == 0 and out[9:, 7].max() == 0
    result = time_slices({"x/y": edge_video(), "x_y": edge_video()}, SliceLine("y", 1))
    with pytest.raises(InputError, match="clashing file names"):
        save_time_slices(result, tmp_path)


def test_video_file_against_a_frame_folder_aligns_by_position(tmp_path: Path) -> None:
    video = edge_video()
    gt = write_folder(tmp_path / "gt", video, [f"f{i}" for i in range(T)])
    with open_writer(tmp_path / "method.mp4", fps=10, lossless=True) as writer:
        for frame in video:
            writer.write(frame)
    result = time_slices({"method": tmp_path / "method.mp4", "GT": gt}, SliceLine("y", 5), frames=slice(1, 7))
    assert result.alignment == "index" and result.labels == [f"f{i}" for i in range(1, 7)]
    assert result.methods[0].frames == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(result.methods[0].slice, result.methods[1].slice, atol=0.1)
