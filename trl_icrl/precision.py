"""The precision the model's matmuls run in: bf16 autocast where the CPU has bf16 matrix or dot-product units (AMX,
AVX512-BF16), fp32 elsewhere.

Master weights, optimizer state, the Q head's output, TD targets and the loss stay fp32 in either mode: only the
base's (and adapter's) matmuls and attention run in bf16 under ``torch.autocast``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""lscpu flags of units that multiply bf16 in hardware: AMX tiles, AVX-512 bf16 dot products."""


def cpu_bf16_units() -> list[str]:
    """Which of ``BF16_CPU_FLAGS`` this CPU has (``/proc/cpuinfo``; torch's AMX check elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        flags.add("amx_bf16")
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def cpu_has_bf16_units() -> bool:
    """True when this CPU multiplies bf16 in hardware (AMX or AVX512-BF16): there bf16 autocast measured 1.5-2.6x
    faster than fp32; on CPUs without either, slower."""
    return bool(cpu_bf16_units())


def cpu_supports_bf16() -> bool:
    """True when oneDNN runs bf16 matmuls on this CPU at all (AVX-512 or AMX), fast or not."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device_type: str = "cpu", bf16_flag: bool = False) -> str:
    """``"bf16"`` or ``"fp32"`` for ``precision`` on a ``device_type`` device: ``"auto"`` is bf16 on a CPU with
    bf16 units (``cpu_has_bf16_units``), and on an accelerator what ``TrainingArguments.bf16`` (``bf16_flag``)
    says. Raises one sentence for an unknown name or bf16 forced on a CPU that cannot run it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device_type != "cpu":
        return "bf16" if precision == "bf16" or (precision == "auto" and bf16_flag) else "fp32"
    if precision == "auto":
        return "bf16" if cpu_has_bf16_units() else "fp32"
    if precision == "bf16" and not cpu_supports_bf16():
        raise ValueError("precision='bf16' needs a CPU that runs bf16 matmuls (oneDNN with AVX-512 or AMX); this "
                         "one does not: use precision='fp32' or 'auto'")
    return precision


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device_type`` for ``precision="bf16"``, nothing for ``"fp32"``."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_precision(resolved: str, asked: str, device_type: str) -> str:
    """One line for the log: ``precision: bf16 (asked 'auto'; CPU with avx512_bf16)``."""
    where = device_type if device_type != "cpu" else f"CPU with {', '.join(cpu_bf16_units()) or 'no bf16 units'}"
    return f"precision: {resolved} (asked {asked!r}; {where})"
