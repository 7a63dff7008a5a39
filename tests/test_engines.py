"""Every engine against the eager autograd reference, on the same input.

Tolerances (max over frames of ||D_engine - D_eager||_2 / ||D_eager||_2, D = X_N - X_1):

* float32 engines (adjoint, onnx, compile, tensorrt fp32): 1e-5 (measured 4.5e-7 for
  adjoint and onnx at N = 20; 1.2e-6 for compile).
* reduced precision (bf16 on CPU, fp16 on CUDA): 0.3 (measured 0.13 for bf16 at N = 20
  on the random network: ReLU masks flip where a pre-activation rounds across zero).
  What must hold exactly in any precision is checked too: each frame's step has L1
  norm (N - 1) * gamma and the sign of X_1.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from rtmag.engines import create_engine, list_engines
from rtmag.errors import UserError

FP32_TOL = 1e-5
LOW_TOL = 0.3


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RTMAG_CACHE_DIR", str(tmp_path / "cache"))


def _inputs(batch: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 36, 36, generator=gen) * 0.01
    gamma = torch.linspace(5e-4, 2e-3, batch)
    return x, gamma


def _rel(got: torch.Tensor, ref: torch.Tensor) -> float:
    num = (got.float().cpu() - ref).flatten(1).norm(dim=1)
    return float((num / ref.flatten(1).norm(dim=1)).max())


def _check_structure(d: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor, n_iter: int):
    d = d.float().cpu()
    torch.testing.assert_close(d.abs().flatten(1).sum(1), (n_iter - 1) * gamma, rtol=1e-4, atol=0)
    assert bool(((d == 0) | (torch.sign(d) == torch.sign(x))).all())


def test_registry_lists_and_rejects(pulse_net):
    assert {"eager", "adjoint", "compile", "onnx", "tensorrt"} <= set(list_engines())
    with pytest.raises(UserError, match="known engines: adjoint, compile, eager"):
        create_engine("warp", pulse_net, 3)
    with pytest.raises(UserError, match="unknown precision"):
        create_engine("adjoint:int8", pulse_net, 3)
    with pytest.raises(UserError, match="does not run precision 'bf16'"):
        create_engine("onnx:bf16", pulse_net, 3)
    with pytest.raises(UserError, match="fp16 is for CUDA"):
        create_engine("adjoint", pulse_net, 3, precision="fp16")
    with pytest.raises(UserError, match="names precision"):
        create_engine("adjoint:bf16", pulse_net, 3, precision="fp32")


def test_adjoint_matches_eager_fp32(pulse_net):
    x, gamma = _inputs(6)
    ref = create_engine("eager", pulse_net, 20)(x, gamma)
    got = create_engine("adjoint", pulse_net, 20)(x, gamma)
    assert ref.abs().sum() > 0
    assert _rel(got, ref) < FP32_TOL
    _check_structure(got, x, gamma, 20)


@pytest.mark.parametrize("name", ["adjoint:bf16", "eager:bf16"])
def test_bf16_close_to_fp32(pulse_net, name):
    x, gamma = _inputs(6)
    ref = create_engine("eager", pulse_net, 20)(x, gamma)
    engine = create_engine(name, pulse_net, 20)
    assert engine.precision == "bf16"
    got = engine(x, gamma)
    assert got.dtype == torch.float32
    assert _rel(got, ref) < LOW_TOL
    _check_structure(got, x, gamma, 20)


def test_onnx_matches_eager_and_is_cached(pulse_net):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install rtmag[onnx]")
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    n_iter = 3  # export unrolls the loop: keep it small
    engine = create_engine("onnx", pulse_net, n_iter)
    assert engine.info["exported"] and os.path.isfile(engine.info["model"])
    for batch in (1, 5):  # dynamic batch
        x, gamma = _inputs(batch, seed=batch)
        ref = create_engine("eager", pulse_net, n_iter)(x, gamma)
        assert _rel(engine(x, gamma), ref) < FP32_TOL
    again = create_engine("onnx", pulse_net, n_iter)
    assert not again.info["exported"] and again.info["model"] == engine.info["model"]
    # other weights, other file
    other = type(pulse_net)(x_scale=50.0).eval()
    from rtmag.engines.onnx import onnx_model_path

    assert onnx_model_path(other, n_iter) != onnx_model_path(pulse_net, n_iter)


def test_onnx_missing_names_the_extra(pulse_net, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(UserError, match=r"pip install rtmag\[onnx\]"):
        create_engine("onnx", pulse_net, 3)


@pytest.mark.slow
def test_compile_matches_eager_any_batch(pulse_net, monkeypatch, tmp_path):
    """Cold inductor compile: ~50 s on 2 loaded cores (a few s with a warm cache)."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # hermetic
    from rtmag.engines.auto import default_candidates

    n_iter = 2
    engine = create_engine("compile", pulse_net, n_iter)
    # auto leaves a cold compile out on CPU, and measures it once it has compiled here
    assert "compile" not in default_candidates("cpu", pulse_net, n_iter)
    for batch in (3, 5, 1):  # one dynamic-batch graph; batch 1 is padded to 2
        x, gamma = _inputs(batch, seed=batch)
        ref = create_engine("eager", pulse_net, n_iter)(x, gamma)
        got = engine(x, gamma)
        assert got.shape == x.shape
        assert _rel(got, ref) < FP32_TOL
    assert default_candidates("cpu", pulse_net, n_iter) == ["adjoint", "onnx", "compile"]
    assert "compile" not in default_candidates("cpu", pulse_net, n_iter + 1)  # another graph


def test_compile_keeps_cache_in_rtmag_dir(monkeypatch, tmp_path):
    from rtmag.engines.torch_engines import keep_compile_cache_warm

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert keep_compile_cache_warm() == str(tmp_path / "cache" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert keep_compile_cache_warm() == str(tmp_path / "mine")  # the user's choice stays
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # set by inductor
    assert keep_compile_cache_warm() == str(tmp_path / "cache" / "inductor")


def test_tensorrt_error_is_clear_without_cuda_or_package(pulse_net):
    with pytest.raises(UserError, match="runs on a CUDA device"):
        create_engine("tensorrt", pulse_net, 3, "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="needs CUDA"):
            create_engine("tensorrt", pulse_net, 3, "cuda")
    else:
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            with pytest.raises(UserError, match=r"pip install rtmag\[tensorrt\]"):
                create_engine("tensorrt", pulse_net, 3, "cuda")


@pytest.mark.skipif(
    os.environ.get("RTMAG_TEST_TENSORRT") != "1",
    reason="TensorRT runs only on request: RTMAG_TEST_TENSORRT=1 (needs CUDA and torch-tensorrt)",
)
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-4), ("fp16", LOW_TOL)])
def test_tensorrt_matches_eager(pulse_net, precision, tol):
    # opted in: no skip, no fallback; a missing CUDA or package fails here
    n_iter = 4
    engine = create_engine("tensorrt", pulse_net, n_iter, "cuda", precision=precision, max_batch=8)
    for batch in (1, 8):
        x, gamma = _inputs(batch, seed=batch)
        ref = create_engine("eager", pulse_net, n_iter)(x, gamma)
        got = engine(x, gamma)
        assert got.is_cuda
        assert _rel(got, ref) < tol
        _check_structure(got, x, gamma, n_iter)
    again = create_engine("tensorrt", pulse_net, n_iter, "cuda", precision=precision, max_batch=8)
    assert not again.info["built"]  # loaded from the engine cache


def test_auto_probes_once_then_uses_the_cache(pulse_net, capsys, tmp_path):
    import json

    cands = ["eager", "adjoint"]
    engine = create_engine("auto", pulse_net, 3, candidates=cands, probe_batch=2)
    assert engine.name in cands
    err = capsys.readouterr().err
    assert f"engine auto -> {engine.name}:fp32 (measured" in err
    record = json.loads((tmp_path / "cache" / "auto.json").read_text())
    (entry,) = record.values()
    assert entry["choice"] == engine.name and set(entry["ms_per_frame"]) == set(cands)
    again = create_engine("auto", pulse_net, 3, candidates=cands, probe_batch=2)
    assert again.name == engine.name
    assert capsys.readouterr().err == ""  # printed once per process
    x, gamma = _inputs(2)
    ref = create_engine("eager", pulse_net, 3)(x, gamma)
    assert _rel(again(x, gamma), ref) < FP32_TOL


def test_auto_skips_engines_that_cannot_run(pulse_net, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    from rtmag.engines.auto import probe_engines

    rec = probe_engines(pulse_net, 2, "cpu", "fp32", ["onnx", "tensorrt", "adjoint"], 2, 1)
    assert rec["choice"] == "adjoint"
    assert "rtmag[onnx]" in rec["skipped"]["onnx"] and "CUDA" in rec["skipped"]["tensorrt"]


def test_auto_candidates_from_environment(monkeypatch):
    from rtmag.engines.auto import default_candidates

    assert default_candidates("cpu") == ["adjoint", "onnx"]  # no cold compile by default
    monkeypatch.setenv("RTMAG_AUTO_ENGINES", "adjoint, compile")
    assert default_candidates("cpu") == ["adjoint", "compile"]


def test_auto_reprobes_when_the_cached_choice_is_not_installed(pulse_net, monkeypatch, tmp_path):
    import json

    cands = ["onnx", "adjoint"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # onnx is not installed here
    first = create_engine("auto", pulse_net, 2, candidates=cands, probe_batch=2)
    assert first.name == "adjoint"
    path = tmp_path / "cache" / "auto.json"
    record = json.loads(path.read_text())
    for entry in record.values():  # as if another environment (with onnx) chose it
        entry["choice"] = "onnx"
    path.write_text(json.dumps(record))
    again = create_engine("auto", pulse_net, 2, candidates=cands, probe_batch=2)
    assert again.name == "adjoint"
    assert all(e["choice"] == "adjoint" for e in json.loads(path.read_text()).values())


def test_auto_measures_an_engine_installed_after_a_probe_that_skipped_it(
    pulse_net, monkeypatch, capsys
):
    """A probe made while onnx was missing is not reused once it is installed."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install rtmag[onnx]")
    pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    cands = ["onnx", "adjoint"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnxruntime", None)  # not installed yet
        first = create_engine("auto", pulse_net, 2, candidates=cands, probe_batch=2)
    assert first.info["auto"]["skipped"].keys() == {"onnx"}
    capsys.readouterr()
    after = create_engine("auto", pulse_net, 2, candidates=cands, probe_batch=2)
    assert "probing onnx, adjoint" in capsys.readouterr().err
    assert set(after.info["auto"]["ms_per_frame"]) == {"onnx", "adjoint"}
