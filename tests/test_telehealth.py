"""The telehealth example in a real browser: the server runs on the synthetic person,
headless Chromium (driven over the DevTools protocol) opens the page, waits for
frames and a heart rate, and takes a screenshot whose pixels are checked."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SERVER = REPO / "examples" / "telehealth" / "server.py"

aiohttp = pytest.importorskip("aiohttp", reason="the telehealth example needs aiohttp (.[dev])")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH: apt-get install -y chromium (CI's .ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        try:
            value = fn()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", str(port), "--engine", "eager"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(url + "/api/state")["frames"] > 0, 90, "first frame", proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.seek(0)
        print(log.read())
        log.close()


class Page:
    """The smallest DevTools-protocol client: send a command, get its result."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    async def js(self, expr: str):
        res = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return res["result"].get("value")


async def browse(url: str, port: int, shot: pathlib.Path) -> dict:
    async with aiohttp.ClientSession() as http:
        targets = None
        for _ in range(150):
            try:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                    targets = [t for t in await r.json() if t["type"] == "page"]
                if targets:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        assert targets, "chromium's DevTools endpoint did not come up"
        async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=url + "/")
            state = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                state = await page.js(
                    "({hr: document.getElementById('hr').textContent,"
                    " status: document.getElementById('status').textContent,"
                    " mag: document.getElementById('magnified').naturalWidth,"
                    " orig: document.getElementById('original').naturalWidth,"
                    " rects: ['magnified', 'original', 'wave'].map(id => {"
                    "   const r = document.getElementById(id).getBoundingClientRect();"
                    "   return [r.left, r.top, r.width, r.height]; })})"
                )
                if state and "bpm" in state["hr"] and "-" not in state["hr"] and state["mag"]:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # a few more frames and waveform samples
            png = await page.call("Page.captureScreenshot", format="png")
            shot.write_bytes(base64.b64decode(png["data"]))
            return state


def crop(img: np.ndarray, rect) -> np.ndarray:
    x, y, w, h = (int(round(v)) for v in rect)
    return img[y : y + h, x : x + w]


def test_page_shows_video_rate_and_waveform(server, tmp_path):
    import cv2

    browser = chromium()
    port = free_port()
    profile = tmp_path / "profile"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    cmd += [f"--remote-debugging-port={port}", f"--user-data-dir={profile}"]
    cmd += ["--window-size=1000,720", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shot = tmp_path / "page.png"
    try:
        state = asyncio.run(browse(server, port, shot))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert state["mag"] == 320 and state["orig"] == 320, state  # frames arrived
    rate = int(state["hr"].split()[0])
    assert 42 <= rate <= 150, state  # a heart rate is shown (the person's is 72)
    assert state["status"] == "running"
    img = cv2.imread(str(shot))
    assert img is not None
    for rect in state["rects"]:  # everything checked is on the screenshot
        assert rect[0] + rect[2] <= img.shape[1] and rect[1] + rect[3] <= img.shape[0], rect
    for name, rect in zip(("magnified", "original"), state["rects"][:2]):
        video = crop(img, rect).astype(float)
        assert video.size and video.std() > 15, f"the {name} video area is blank"
        assert 20 < video.mean() < 235, f"the {name} video area is all black or white"
    wave = crop(img, state["rects"][2])
    trace = np.abs(wave.astype(int) - [0x12, 0x0F, 0x0E]).sum(axis=2) > 60  # BGR background
    columns = trace.any(axis=0).mean()
    # the plot spans 10 s and the stream is a few seconds old
    assert columns > 0.2, f"the waveform covers {columns:.0%} of the plot's width"
    assert trace.any(axis=1).mean() > 0.3, "the waveform is flat"
