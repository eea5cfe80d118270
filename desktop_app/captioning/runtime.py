"""onnxruntime sessions on the best execution provider that really works here."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

PROVIDERS = ("auto", "cuda", "cpu")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"

log = logging.getLogger(__name__)
ort.set_default_logger_severity(3)  # provider fallbacks are reported by us, in words


class ProviderError(RuntimeError):
    """The asked-for execution provider cannot run on this machine."""


@dataclass(frozen=True)
class RuntimeOptions:
    provider: str = "auto"  # auto | cuda | cpu
    threads: int = 0  # intra-op threads; 0 = one per core

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, not {self.provider!r}")


@functools.cache
def _cuda_candidate() -> bool:
    """The GPU build and an NVIDIA driver are present (cheap checks, once per process)."""
    if _CUDA not in ort.get_available_providers():
        return False
    driver = ctypes.util.find_library("cuda") or ("nvcuda.dll" if os.name == "nt" else "libcuda.so.1")
    try:
        ctypes.CDLL(driver)
    except OSError:
        return False
    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, when installed
        try:
            ort.preload_dlls()
        except Exception:  # best effort: the first session decides
            pass
    return True


_cuda_works: bool | None = None  # learnt from the first session that tried CUDA


def open_session(model: Path, options: RuntimeOptions) -> tuple[ort.InferenceSession, str]:
    """A session and the name of the provider it actually runs on ("CUDA" or "CPU").

    onnxruntime-gpu lists CUDA as available even without a GPU and then
    silently falls back to CPU; so we check what the session really got, and
    remember it so later sessions do not try again.
    """
    global _cuda_works
    settings = ort.SessionOptions()
    settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    settings.intra_op_num_threads = options.threads or (os.cpu_count() or 1)
    settings.inter_op_num_threads = 1
    # Idle onnxruntime threads sleep instead of spinning: the photo-decoding threads share these cores.
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    settings.log_severity_level = 3
    want_cuda = options.provider in ("auto", "cuda") and _cuda_works is not False and _cuda_candidate()
    if options.provider == "cuda" and not want_cuda:
        if _CUDA not in ort.get_available_providers():
            raise ProviderError("CUDA was asked for, but this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        raise ProviderError("CUDA was asked for, but no usable NVIDIA GPU, driver or CUDA/cuDNN libraries were found")
    providers = [_CUDA, _CPU] if want_cuda else [_CPU]
    try:
        session = ort.InferenceSession(str(model), settings, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        if not (want_cuda and options.provider == "auto"):
            raise
        log.info("CUDA session failed (%s); using CPU", exc)
        session = ort.InferenceSession(str(model), settings, providers=[_CPU])
    used = "CUDA" if session.get_providers()[0] == _CUDA else "CPU"
    if want_cuda:
        _cuda_works = used == "CUDA"
    if options.provider == "cuda" and used != "CUDA":
        raise ProviderError("CUDA was asked for, but the CUDA provider could not start (driver, CUDA 12/13 or cuDNN 9 missing)")
    return session, used
