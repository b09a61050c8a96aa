"""The report page in headless Chromium, driven over the DevTools protocol (``--remote-debugging-pipe``).

Skipped when no Chromium is installed (Debian: ``apt-get install chromium``; or set ``TAMI_CHROMIUM``), unless
``TAMI_REQUIRE_CHROMIUM`` is set (CI), which turns the skip into a failure. Checks:
no console errors or exceptions, only ``file:``/``data:`` requests, dragging the line on a frame changes every
method's time slice (compared on screenshots), and a screenshot is written.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tami.report import build_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


def chromium() -> str | None:
    """The Chromium executable: ``$TAMI_CHROMIUM`` or the first of the usual names on PATH."""
    env = os.environ.get("TAMI_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class DevTools:
    """A minimal DevTools-protocol client over the pipe pair (fd 3: commands in, fd 4: replies out, NUL-separated)."""

    def __init__(self, exe: str, profile: Path) -> None:
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # Move the child's ends above 10 so the dup2 to 3/4 below cannot clobber one another.
        child_r, child_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        for fd in (cmd_r, out_w):
            os.close(fd)

        def remap() -> None:
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=remap)
        os.close(child_r)
        os.close(child_w)
        self.write_fd, self.read_fd = cmd_w, out_r
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float = 20.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session is not None:
            message["sessionId"] = self.session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {expression}")

    def screenshot(self) -> np.ndarray:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        return image

    def mouse(self, kind: str, x: float, y: float, buttons: int) -> None:
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons,
                                               "clickCount": 1})

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.write_fd)
        os.close(self.read_fd)


def _video(folder: Path, frames: int, gain: np.ndarray) -> Path:
    """A moving pattern: a diagonal gradient sliding right and a bright disc; per-frame brightness ``gain``."""
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:48, 0:64]
    for t in range(frames):
        image = np.stack([((xx + 4 * t) % 64) / 64, yy / 48, 0.5 + 0 * xx], -1)
        image[(xx - 8 - 3 * t) ** 2 + (yy - 24) ** 2 < 64] = 1.0
        image = np.clip(image * gain[t], 0, 1)
        cv2.imwrite(str(folder / f"{t:04d}.png"), np.rint(image[:, :, ::-1] * 255).astype(np.uint8))
    return folder


def _panel_boxes(tools: DevTools, cls: str) -> list[dict[str, float]]:
    return tools.evaluate(
        f"Array.from(document.querySelectorAll('canvas.{cls}')).map(c => {{ const r = c.getBoundingClientRect(); "
        "return {x: r.left + window.scrollX, y: r.top + window.scrollY, w: r.width, h: r.height}; })")


def _crop(image: np.ndarray, box: dict[str, float]) -> np.ndarray:
    x, y = int(round(box["x"])), int(round(box["y"]))
    return image[y:y + int(box["h"]), x:x + int(box["w"])]


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    if chromium() is None:
        if os.environ.get("TAMI_REQUIRE_CHROMIUM"):
            pytest.fail("TAMI_REQUIRE_CHROMIUM is set but no Chromium was found (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    frames = 12
    rng = np.random.default_rng(0)
    gt = _video(tmp_path / "gt", frames, np.ones(frames))
    flicker = _video(tmp_path / "flicker", frames, 1 + 0.3 * rng.standard_normal(frames))
    dark = _video(tmp_path / "input", frames, np.full(frames, 0.2))
    page = build_report({"input": dark, "flicker": flicker}, tmp_path / "report", gt=gt, metrics=("psnr", "mabd"))
    text = page.read_text()
    assert "http://" not in text and "https://" not in text

    tools = DevTools(chromium() or "", tmp_path / "profile")
    try:
        target = next(t for t in tools.send("Target.getTargets", session=False)["targetInfos"] if t["type"] == "page")
        tools.session = tools.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                                   session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            tools.send(f"{domain}.enable")
        tools.send("Emulation.setDeviceMetricsOverride", {"width": 900, "height": 700, "deviceScaleFactor": 1,
                                                          "mobile": False})
        tools.send("Page.navigate", {"url": page.resolve().as_uri()})
        tools.wait_for("window.tamiReport && window.tamiReport.ready")
        assert tools.evaluate("document.querySelectorAll('.panel').length") == 3
        assert tools.evaluate("document.querySelector('#metrics table') !== null")
        assert tools.evaluate("document.querySelector('#metrics img').complete && "
                              "document.querySelector('#metrics img').naturalWidth > 0")

        views, slices = _panel_boxes(tools, "view"), _panel_boxes(tools, "slice")
        before = tools.screenshot()
        updates = tools.evaluate("window.tamiReport.sliceUpdates")
        start_pos = tools.evaluate("window.tamiReport.state.pos")
        view = views[0]
        y = view["y"] + view["h"] / 2 - tools.evaluate("window.scrollY")
        tools.mouse("mousePressed", view["x"] + 0.5 * view["w"], y, 1)
        for frac in (0.4, 0.3, 0.2):
            tools.mouse("mouseMoved", view["x"] + frac * view["w"], y, 1)
        tools.mouse("mouseReleased", view["x"] + 0.2 * view["w"], y, 0)
        tools.wait_for(f"window.tamiReport.sliceUpdates > {updates} && window.tamiReport.state.pos !== {start_pos}")
        tools.wait_for("(() => new Promise(r => requestAnimationFrame(() => r(true))))()")
        pos = tools.evaluate("window.tamiReport.state.pos")
        width = tools.evaluate("window.tamiReport.data.width")
        assert abs(pos - 0.2 * width) <= 1.5
        after = tools.screenshot()
        out = tmp_path / "screenshot.png"
        cv2.imwrite(str(out), after)
        assert out.stat().st_size > 0
        shot_dir = os.environ.get("TAMI_SCREENSHOT_DIR")
        if shot_dir:
            cv2.imwrite(str(Path(shot_dir) / "report.png"), after)
        for box in slices:
            a, b = _crop(before, box), _crop(after, box)
            assert a.shape == b.shape and a.size > 0
            assert np.abs(a.astype(int) - b.astype(int)).max() > 10, "the time slice did not change"

        tools.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "ArrowRight", "code": "ArrowRight",
                                              "windowsVirtualKeyCode": 39})
        assert tools.wait_for("window.tamiReport.state.t === 1")
        tools.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "r", "code": "KeyR", "text": "r",
                                              "windowsVirtualKeyCode": 82})
        tools.wait_for("window.tamiReport.state.axis === 'y'")
        stripe = tools.evaluate("window.tamiReport.state.stripe")
        sizes = tools.evaluate("Array.from(document.querySelectorAll('canvas.slice')).map(c => [c.width, c.height])")
        assert sizes == [[64, frames * stripe]] * 3  # horizontal line: frame width x (frames * stripe)
    finally:
        tools.close()

    errors = [e for e in tools.events if (e.get("method") == "Runtime.consoleAPICalled"
                                          and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    urls = [e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
