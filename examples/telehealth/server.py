"""Telehealth example: rtmag's live pipeline served to a browser.

One page shows the original video and the magnified one side by side (MJPEG), the
heart rate with its confidence, and the network's pulse waveform of the last
seconds. The source is the synthetic person of ``rtmag demo`` by default (no camera
needed), or a camera index, stream URL or video file.

Run (from the repository root, after ``pip install -e ".[telehealth]"``)::

    python examples/telehealth/server.py            # http://127.0.0.1:8080/

Routes: ``/`` the page; ``/video/magnified.mjpg`` and ``/video/original.mjpg`` the
streams; ``/frame/magnified.jpg`` and ``/frame/original.jpg`` the latest frame;
``/api/state?since=T`` JSON: status, the latest vitals event, and the waveform
samples after stream time ``T``.

The pipeline runs in rtmag's own threads (:class:`rtmag.LiveMagnifier`); its callbacks
hand JPEG frames and samples to the asyncio handlers through :class:`Hub`. If the
stream ends or fails, the server keeps serving and the page says why.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import pathlib
import sys
import threading

import cv2
from aiohttp import web

import rtmag

HERE = pathlib.Path(__file__).resolve().parent
VIEWS = ("magnified", "original")
BOUNDARY = "rtmagframe"


class Hub:
    """The latest frames, waveform and vitals, shared by the pipeline's dispatch thread
    (writer) and the web handlers on the event loop (readers).

    Args:
        loop: the server's event loop (woken when a frame arrives).
        history_s: seconds of waveform kept.
        jpeg_quality: 0-100.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, history_s: float = 12.0, jpeg_quality=80):
        self.loop = loop
        self.history_s = float(history_s)
        self.quality = int(jpeg_quality)
        self.lock = threading.Lock()
        self.jpeg: dict[str, bytes | None] = {v: None for v in VIEWS}
        self.frames = 0
        self.signal: collections.deque = collections.deque()
        self.vitals: dict | None = None
        self.status = "starting"
        self.new_frame = asyncio.Event()
        self.fps = 30.0  # nominal rate of the source (set when the pipeline is made)
        self._last_t: float | None = None

    def _encode(self, rgb) -> bytes:
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        )
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def on_frame(self, item) -> None:
        """LiveMagnifier callback (dispatch thread): encode and keep the frame."""
        f = item.frame
        mag, orig = self._encode(f.image), self._encode(f.original)
        with self.lock:
            self.jpeg["magnified"], self.jpeg["original"] = mag, orig
            self.frames += 1
            if math.isfinite(f.signal) and self._last_t is not None:
                # a pair across dropped frames reads a larger change: per frame period
                per_frame = (1.0 / self.fps) / max(f.time_s - self._last_t, 1e-6)
                self.signal.append((f.time_s, float(f.signal) * per_frame))
            self._last_t = f.time_s
            while self.signal and self.signal[0][0] < f.time_s - self.history_s:
                self.signal.popleft()
        self.loop.call_soon_threadsafe(self._wake)

    def on_vitals(self, event: dict) -> None:
        """LiveMagnifier callback (dispatch thread): keep the latest vitals event."""
        with self.lock:
            self.vitals = dict(event)

    def _wake(self) -> None:
        self.new_frame.set()
        self.new_frame = asyncio.Event()

    def state(self, since: float) -> dict:
        """JSON-ready state: status, frames so far, vitals, samples after ``since``."""
        with self.lock:
            samples = [s for s in self.signal if s[0] > since]
            return {
                "status": self.status,
                "frames": self.frames,
                "vitals": self.vitals,
                "signal": {"t": [s[0] for s in samples], "y": [s[1] for s in samples]},
                "history_s": self.history_s,
            }


def status_of(live: rtmag.LiveMagnifier) -> str:
    """One line for the page: running, or why the stream stopped."""
    if live.error is not None:
        return f"error: {type(live.error).__name__}: {live.error}"
    if live.running:
        return "running"
    return f"ended: {live.pipeline.end_reason or 'stopped'}"


async def watch(app: web.Application) -> None:
    """Keep the hub's status current (the server outlives the stream)."""
    hub, live = app["hub"], app["live"]
    while True:
        hub.status = status_of(live)
        await asyncio.sleep(0.5)


async def index(request: web.Request) -> web.Response:
    return web.FileResponse(HERE / "index.html")


def _view(request: web.Request) -> str:
    view = request.match_info["view"]
    if view not in VIEWS:
        raise web.HTTPNotFound(text=f"no view {view!r}; use one of {', '.join(VIEWS)}")
    return view


async def frame(request: web.Request) -> web.Response:
    """The latest JPEG of one view (503 until the first frame)."""
    jpeg = request.app["hub"].jpeg[_view(request)]
    if jpeg is None:
        raise web.HTTPServiceUnavailable(text="no frame yet", headers={"Retry-After": "1"})
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def mjpeg(request: web.Request) -> web.StreamResponse:
    """An endless multipart JPEG stream of one view, a part per new frame."""
    view = _view(request)
    hub: Hub = request.app["hub"]
    resp = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store",
        }
    )
    await resp.prepare(request)
    try:
        while True:
            event = hub.new_frame
            jpeg = hub.jpeg[view]
            if jpeg is not None:
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                await resp.write(head.encode() + jpeg + b"\r\n")
            try:
                await asyncio.wait_for(event.wait(), timeout=1.0)
            except TimeoutError:
                pass  # no new frame (stream ended?): send the last one again
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away
    return resp


async def state(request: web.Request) -> web.Response:
    """``/api/state?since=T``: status, vitals and the waveform after stream time T."""
    text = request.query.get("since", "-inf")
    try:
        since = float(text)
    except ValueError:
        return web.json_response(
            {"error": f"since must be a number of seconds, got {text!r}"}, status=400
        )
    if math.isnan(since):
        return web.json_response({"error": "since must not be NaN"}, status=400)
    body = json.dumps(request.app["hub"].state(since), allow_nan=False)
    return web.Response(text=body, content_type="application/json")


def make_live(args, hub: Hub) -> rtmag.LiveMagnifier:
    """The pipeline on ``args.source``, its callbacks into ``hub``."""
    cfg = rtmag.MagnifierConfig(
        magnification=args.magnification, weights=args.weights, engine=args.engine
    )
    source = args.source
    if source not in ("synthetic", "push") and source.strip().isdigit():
        source = int(source)
    return rtmag.LiveMagnifier(
        source,
        cfg,
        on_frame=hub.on_frame,
        on_vitals=hub.on_vitals,
        torch_threads=args.threads,
    )


def build_app(args) -> web.Application:
    """The web application; the pipeline starts with the server and stops with it."""
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/video/{view}.mjpg", mjpeg)
    app.router.add_get("/frame/{view}.jpg", frame)
    app.router.add_get("/api/state", state)

    async def start(app: web.Application) -> None:
        hub = Hub(asyncio.get_running_loop())
        app["hub"] = hub
        app["live"] = live = make_live(args, hub)  # loads the weights: a few seconds
        hub.fps = live.source.fps
        live.start()
        app["watch"] = asyncio.create_task(watch(app))
        print(f"serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)

    async def stop(app: web.Application) -> None:
        app["watch"].cancel()
        await asyncio.get_running_loop().run_in_executor(None, app["live"].stop)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="rtmag telehealth example: magnified video in a browser"
    )
    p.add_argument(
        "--source",
        default="synthetic",
        help="synthetic (default: the demo's person), a camera index, a stream URL or a video file",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--magnification", type=float, default=20.0, help="pulse magnification")
    p.add_argument("--weights", default=None, help="weight file (default: the shipped one)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the ascent")
    p.add_argument("--engine", default="auto", help="where the ascent runs (rtmag env lists)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        app = build_app(args)
        web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=1.0)
    except rtmag.UserError as exc:
        print(f"telehealth: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
