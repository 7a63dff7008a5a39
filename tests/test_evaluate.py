"""rtmag.evaluate: matching, goals, the respiration displacement measure, and a smoke
run of ``rtmag evaluate`` on tiny clips (JSON structure, finite numbers, figures)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rtmag import evaluate as ev
from rtmag.errors import UserError


def test_matching_a_linear_method_hits_the_target():
    """A method whose gain is 1 + 0.37 s (as EVM's alpha) is matched in one round."""

    class Linear:
        def initial_strength(self, target):
            return target - 1.0

        def pair(self, clip, s):
            return 1.0 + 0.37 * s, None  # the "output" is its gain

    spec = ev.ModeSpec("pulse", (0.7, 2.5), ("lin",), "skin", "gain", lambda c, o, o0, b: o, 20.0)
    got = ev.match_strengths(
        spec, {"lin": Linear()}, [None, None], 20.0, rounds=1, log=lambda m: None
    )
    assert got["lin"]["strength"] == pytest.approx(19.0 / 0.37)
    assert got["lin"]["gains"] == [pytest.approx(20.0)] * 2
    assert [h[1] for h in got["lin"]["history"]] == [
        pytest.approx(1 + 0.37 * 19),
        pytest.approx(20.0),
    ]


def test_matching_keeps_the_nearest_strength_when_the_gain_falls():
    """A phase magnifier's gain peaks and then falls as its strength grows; the secant
    step then overshoots, and the match keeps the strength nearest the target, not
    the last one tried."""

    class Peaked:
        def initial_strength(self, target):
            return 9.0

        def pair(self, clip, s):
            return 1.0 + 6.0 * (s / 12.0) * math.exp(1.0 - s / 12.0), None  # peak 7 at 12

    spec = ev.ModeSpec("pulse", (0.7, 2.5), ("pk",), "skin", "gain", lambda c, o, o0, b: o, 10.0)
    got = ev.match_strengths(spec, {"pk": Peaked()}, [None], 10.0, rounds=2, log=lambda m: None)
    hist = got["pk"]["history"]
    best = min(hist, key=lambda h: abs(h[1] - 10.0))
    assert hist[-1][1] < best[1]  # the last try overshot onto the falling side
    assert got["pk"]["strength"] == best[0]
    assert got["pk"]["gains"] == [pytest.approx(best[1])]


def _res(deepmag, evm):
    row = lambda p, q: {"psnr_input": p, "psnr_ideal": q}  # noqa: E731
    return {
        "deepmag": {t: row(*v) for t, v in zip("ABCD", deepmag)},
        "evm": {t: row(*v) for t, v in zip("ABCD", evm)},
    }


def test_goals_by_hand():
    res = _res([(40, 40), (40, 40), (39, 39), (38.5, 38)], [(37, 37), (35, 35), (30, 30), (26, 26)])
    g = ev.check_goals(res, ["evm"])
    assert g["deepmag_psnr_input_drop_A_to_D_db"] == pytest.approx(1.5)
    assert g["evm_psnr_input_drop_A_to_D_db"] == pytest.approx(11.0)
    assert g["met"] is True
    res["evm"]["C"]["psnr_ideal"] = 39.5  # a baseline closer to the ideal on C
    g = ev.check_goals(res, ["evm"])
    assert g["deepmag_best_psnr_ideal_B_to_D"] == {"B": True, "C": False, "D": True}
    assert g["met"] is False
    assert ev.check_goals({"phase": res["evm"]}, ["phase"])["met"] is None  # nothing to judge


def test_bad_settings_are_clear_errors():
    with pytest.raises(UserError, match="not evaluated in mode pulse"):
        ev.EvalConfig(methods=("phase",))
    with pytest.raises(UserError, match="target"):
        ev.EvalConfig(target=1.0)
    with pytest.raises(UserError, match="unknown mode"):
        ev.EvalConfig(mode="sneeze")


def test_shoulder_displacement_reads_the_ideal_respiration_gain():
    """The ideal respiration clip moves the chest by alpha times the input: the
    displacement gain reads alpha (within 10%), the input 1."""
    from rtmag.synth import SynthConfig

    clip = ev.render_clip(
        SynthConfig(task="A", mode="respiration", seconds=8, size=(320, 240), seed=11, alpha=5.0)
    )
    d = ev.shoulder_displacement(clip.frames, clip.source)
    assert np.corrcoef(d, clip.truth["respiration"])[0, 1] > 0.95
    band = (0.16, 0.5)
    assert ev.respiration_clip_gain(clip, clip.frames, clip.without, band) == pytest.approx(1.0)
    assert ev.respiration_clip_gain(clip, clip.ideal, clip.without, band) == pytest.approx(
        5.0, rel=0.10
    )


def _run(tmp_path, pulse_weights, *extra):
    from rtmag.cli import main

    out = tmp_path / "ev"
    args = ["evaluate", "--quick", "--size", "64x48", "--seconds", "1.5", "--rounds", "0"]
    args += ["--weights", str(pulse_weights), "--out", str(out), "--quiet", *extra]
    assert main(args) == 0
    return out, json.loads((out / "evaluate_pulse_quick.json").read_text())


def _check_table(res, methods):
    assert set(res) == {"ideal", *methods}
    for method, per in res.items():
        assert set(per) == set("ABCD")
        for task, row in per.items():
            for key in ev.METRICS:
                assert math.isfinite(row[key]), (method, task, key)
    assert res["ideal"]["A"]["psnr_ideal"] == 100.0


def test_evaluate_smoke(tmp_path, pulse_weights):
    """The command on tiny clips with every pulse method: each table entry present
    and finite, the goals judged, the markdown written."""
    out, result = _run(tmp_path, pulse_weights, "--no-sweep", "--no-figures")
    _check_table(result["results"]["pulse"], {"deepmag", "evm", "vam"})
    assert set(result["matching"]) == {"deepmag", "evm", "vam"}
    assert set(result["goals"]["pulse"]) >= {"deepmag_drop_at_most_2db", "met"}
    assert "| PSNR vs input (dB, Table 1) | evm |" in (out / "evaluate_pulse_quick.md").read_text()


def test_evaluate_sweep_and_figures(tmp_path, pulse_weights):
    """The step sweep (of the first method when DeepMag is not run), the figures, and
    the clips spread over two worker processes."""
    out, result = _run(tmp_path, pulse_weights, "--methods", "evm,vam", "--workers", "2")
    _check_table(result["results"]["pulse"], {"evm", "vam"})
    sweep = result["step_sweep"]["pulse"]
    assert set(sweep) == {"0.5", "1.0", "2.0", "4.0"}
    gains = [sweep[k]["gain"] for k in ("0.5", "1.0", "2.0", "4.0")]
    assert gains == sorted(gains)  # a longer step magnifies more
    for name in ("scanlines", "pixel_traces", "step_sweep"):
        assert (out / f"{name}_pulse_quick.png").stat().st_size > 1000


def test_respiration_column_plugs_in(tmp_path):
    """Respiration with the motion baselines (DeepMag's respiration weights are not
    shipped yet): the same table, the displacement gain, Fig. 6 and Fig. 8."""
    from rtmag.cli import main

    out = tmp_path / "ev"
    args = ["evaluate", "--mode", "respiration", "--methods", "phase", "--quick"]
    args += ["--size", "64x64", "--seconds", "3", "--rounds", "0", "--no-sweep"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "evaluate_respiration_quick.json").read_text())
    assert result["settings"]["target"] == 10.0
    assert result["settings"]["deepmag_rule"]["smooth"] == 0.0  # pulse only
    assert result["settings"]["deepmag_rule"]["colour_axis"] is False  # pulse only
    _check_table(result["results"]["respiration"], {"phase"})
    for name in ("scanlines", "phase_traces"):
        assert (out / f"{name}_respiration_quick.png").stat().st_size > 1000


def test_every_task_has_the_same_skin_tones_spread_over_the_scale():
    """The paper's protocol has every subject do every task, so the fall from A to D
    measures motion: each task's clips carry the same tones, spread over I-VI; the
    scenes (seeds) differ and are held out."""
    from rtmag.evaluate import EVAL_SEED_BASE, clip_configs, clip_tones

    assert clip_tones(1) == [4]
    assert clip_tones(3) == [2, 4, 6]
    assert clip_tones(4) == [1, 3, 4, 6]
    assert clip_tones(6) == [1, 2, 3, 4, 5, 6]
    assert clip_tones(8) == [1, 2, 3, 4, 5, 6, 1, 2]
    cfgs = clip_configs("pulse", "ABCD", 3, 2.0, (64, 48), 30.0, 20.0)
    by_task = {t: [c.skin_tone for c in cfgs if c.task == t] for t in "ABCD"}
    assert all(tones == [2, 4, 6] for tones in by_task.values())
    seeds = [c.seed for c in cfgs]
    assert len(set(seeds)) == len(seeds) and min(seeds) >= EVAL_SEED_BASE
