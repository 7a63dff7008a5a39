"""Screenshot of the live window on the demo's synthetic person (docs, tests).

    xvfb-run -a -s "-screen 0 1280x720x24" python -m rtmag.live.screenshot OUT.png

Runs the live window for ``--seconds``, then grabs the whole X screen (Pillow's
``ImageGrab`` over XCB) to ``OUT.png`` and the picture the window was given to
``OUT.canvas.png``. Without ``--weights`` the network is a frozen random-init one
(the window's look, not its reading, is what this shows).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m rtmag.live.screenshot")
    p.add_argument("out")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--weights", default=None)
    p.add_argument("--size", default="320x240")
    p.add_argument("--magnification", type=float, default=20.0)
    p.add_argument("--crop", action="store_true", help="crop the screenshot to the window")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import cv2
    import numpy as np
    import torch
    from PIL import ImageGrab

    import rtmag.nets
    from rtmag.commands.demo import synthetic_source
    from rtmag.live.display import LiveWindow, require_display
    from rtmag.live.pipeline import LivePipeline
    from rtmag.magnifier import Magnifier, MagnifierConfig

    require_display()
    w, h = (int(v) for v in args.size.split("x"))
    src = synthetic_source((w, h), 72.0, 3, 60.0)  # the demo's default person
    if args.weights:
        mag = Magnifier(
            MagnifierConfig(magnification=args.magnification, weights=args.weights, engine="auto")
        )
    else:
        torch.manual_seed(0)
        net = rtmag.nets.PulseNet().eval()
        for q in net.parameters():
            q.requires_grad_(False)
        mag = Magnifier(MagnifierConfig(gamma=0.5, engine="auto"), net=net)
    t0 = time.monotonic()
    grabbed = {}
    window = LiveWindow()

    def on_canvas(canvas):
        if grabbed or time.monotonic() - t0 < args.seconds:
            return
        for _ in range(5):
            cv2.waitKey(20)  # let the window paint this very picture
        screen = cv2.cvtColor(
            np.asarray(ImageGrab.grab(xdisplay=os.environ.get("DISPLAY"))), cv2.COLOR_RGB2BGR
        )
        if args.crop:  # the screen's pixels where the window is
            x, y = cv2.minMaxLoc(cv2.matchTemplate(screen, canvas, cv2.TM_CCOEFF_NORMED))[3]
            screen = screen[y : y + canvas.shape[0], x : x + canvas.shape[1]]
        cv2.imwrite(args.out, screen)
        stem, ext = os.path.splitext(args.out)
        cv2.imwrite(stem + ".canvas" + ext, canvas)
        grabbed["status"] = window.state
        window.max_seconds = 0.0

    window.on_canvas = on_canvas
    window.max_seconds = args.seconds + 30
    window.run(LivePipeline(src, mag))
    if not grabbed:
        print("no frame was shown in time", file=sys.stderr)
        return 1
    from rtmag.live.display import status_text

    print(
        f"window: {window.state.view} -> both panes (original, magnified), {window.shown} frames shown"
    )
    print(status_text(window._item, window.state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
