"""The benchmark scripts' shared helpers (benchmarks/common.py): what they measure.

The benchmarks themselves are timed runs, not tests; these check the parts
whose mistakes a table would not show, such as which memory a peak is read from.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

COMMON = Path(__file__).resolve().parent.parent / "benchmarks" / "common.py"
SPEC = importlib.util.spec_from_file_location("benchmark_common", COMMON)
common = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(common)


def resident_bytes() -> int:
    """This process's resident set now (VmRSS), in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


@pytest.fixture
def no_gpu(monkeypatch):
    real = tf.config.list_logical_devices
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [] if kind == "GPU" else real(kind))


@pytest.fixture
def a_gpu(monkeypatch):
    """TensorFlow made to report one GPU whose allocator peaked at 3 GiB."""
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: ["/device:GPU:0"] if kind == "GPU" else ["/device:CPU:0"])
    asked = []

    def memory_info(device):
        asked.append(device)
        return {"current": 2 ** 30, "peak": 3 * 2 ** 30}

    monkeypatch.setattr(tf.config.experimental, "get_memory_info", memory_info)
    return asked


def test_on_a_cpu_the_peak_is_the_resident_set_and_follows_allocations(no_gpu):
    assert common.peak_memory_kind() == "resident set"
    before = common.peak_memory_bytes()
    assert before >= resident_bytes()
    # Touch more memory than the process has ever held: the peak must rise by about as much.
    extra = before + 64 * 2 ** 20 - resident_bytes()
    block = np.ones(extra // 8, dtype=np.float64)
    after = common.peak_memory_bytes()
    assert after >= before + 0.9 * 64 * 2 ** 20
    assert after == common.peak_resident_bytes()
    del block


def test_on_a_gpu_the_peak_is_tensorflows_device_allocation(a_gpu):
    assert common.peak_memory_kind() == "GPU device memory"
    assert common.peak_memory_bytes() == 3 * 2 ** 30  # not the host's resident set
    assert a_gpu == ["GPU:0"]
