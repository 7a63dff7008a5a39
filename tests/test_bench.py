"""Smoke test of the end-to-end benchmark (bench/bench_e2e.py) on a tiny clip.

Checks the JSON's structure and that every timing is a finite positive number, the
markdown table and the plot are written, and a peer that does not import is listed
with its reason. No speed is asserted (the machine's load decides that).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _finite_positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def test_bench_e2e_tiny(tmp_path):
    out = tmp_path / "e2e.json"
    cmd = [
        sys.executable,
        str(REPO / "bench" / "bench_e2e.py"),
        "--modes", "pulse", "respiration",
        "--engines", "adjoint",
        "--sizes", "96x72",
        "--batches", "8",
        "--seconds", "2",
        "--resp-seconds", "1",
        "--n-iter", "2",
        "--matmul-seconds", "0.2",
        "--baselines", "evm",
        "--peers", "no_such_peer_package",
        "--cache", str(tmp_path / "clips"),
        "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["complete"] is True
    for key in ("date", "git_revision", "machine", "versions", "cases", "baselines", "goals"):
        assert key in res, key
    assert res["machine"]["cpu"] and len(res["machine"]["load_average_before"]) == 3
    assert res["versions"]["torch"] and res["versions"]["rtmag"]
    assert _finite_positive(res["matmul_flops_per_s"])
    assert {(c["mode"], c["size"], c["batch"]) for c in res["cases"]} == {
        ("pulse", "96x72", 8),
        ("respiration", "96x72", 8),
    }
    for c in res["cases"]:
        assert "error" not in c, c.get("traceback")
        for stage in ("decode", "analyse", "ascent", "filter", "render", "encode"):
            s = c["stages"][stage]
            for k in ("fps", "ms_median", "ms_p95"):
                assert _finite_positive(s[k]), (c["mode"], stage, k, s[k])
        frames = c["frames"]
        assert c["stages"]["decode"]["frames"] == frames
        assert c["stages"]["render"]["frames"] == frames
        for kind in ("e2e_offline", "e2e_causal"):
            e = c[kind]
            assert e["frames"] == frames
            assert _finite_positive(e["fps"]) and _finite_positive(e["latency_ms_median"])
        assert 0 < c["ascent_of_limit"] < 10
    assert c["decimate"] == 4  # respiration at 30 fps
    evm = [b for b in res["baselines"] if "evm" in b["method"]]
    assert {b["path"] for b in evm} == {"offline", "causal"}
    for b in evm:
        assert "error" not in b, b["error"]
        assert _finite_positive(b["fps"])
    assert "does not import" in res["peers_not_run"]["no_such_peer_package"]
    assert set(res["goals"]) == {
        "pulse_e2e_640x480_fps",
        "respiration_e2e_640x480_fps",
        "ascent_of_matmul_limit",
    }
    assert out.with_suffix(".md").read_text().count("| pulse | adjoint | 96x72 | 8 |") >= 2
    png = out.with_suffix(".png")
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
