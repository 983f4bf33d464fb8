"""The one way the runtime reaches OpenVINO: telemetry off (see edge/__init__), f32 on CPU.

OpenVINO may run an FP32 IR in bf16 on a CPU that supports it unless told otherwise; every
number this project reports used the configuration below unless it says bf16.
"""

from __future__ import annotations

from typing import Any

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def openvino() -> Any:
    """`import openvino`, after edge/__init__ has switched its telemetry off."""
    import openvino as ov

    import edge  # noqa: F401  (the telemetry guard lives in the package's __init__)

    return ov


def cpu_config(device: str) -> dict:
    """Compile configuration for `device`: f32 where a CPU could pick bf16."""
    return dict(F32) if device in ("CPU", "AUTO") or device.startswith(("CPU", "AUTO:CPU", "HETERO:CPU")) else {}
