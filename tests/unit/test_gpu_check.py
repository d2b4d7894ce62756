"""bench/gpu_check.py's arithmetic: the GPU peak table, MFU, the dump comparison, the table, and
the pins of the wheels it tells a machine without network to carry."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up there
_spec.loader.exec_module(gpu_check)


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.0),
        ("NVIDIA H200 NVL", 835.0),
        ("NVIDIA H100 80GB HBM3", 989.0),  # SXM
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA GH200 480GB", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA L40", None),  # not L4, not L40S
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_peak_is_looked_up_by_device_name(name, peak):
    assert gpu_check.peak_tflops(name) == peak


def test_mfu_is_six_flops_per_parameter_and_token_over_the_peak():
    # a 1e9-parameter model at 1e5 tokens/s does 6e14 FLOP/s: 60.7 % of 989 TFLOP/s
    assert gpu_check.model_flops(10**9, 1e5) == pytest.approx(6e14)
    mfu = gpu_check.model_flops_utilisation(10**9, 1e5, 989.0)
    assert mfu == pytest.approx(6e14 / 989e12)
    assert gpu_check.model_flops_utilisation(10**9, 2e5, 989.0) == pytest.approx(2 * mfu)


def test_dump_difference_is_relative_to_each_layers_spread():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(3, 50, 8))
    reference[1] *= 10.0  # a wide layer: the same absolute error is smaller there
    reference[2] = 5.0  # a constant layer has no spread to compare with: left out
    got = reference.copy()
    got[0, 3, 4] += 0.2 * reference[0].std()
    got[1, 0, 0] += 0.2 * reference[0].std()
    got[2] += 1.0
    diff = gpu_check.dump_difference(got.astype(np.float16), reference)
    assert diff["layer"] == 0
    assert diff["max_rel"] == pytest.approx(0.2, abs=5e-3)  # float16 storage rounding
    assert diff["rms_rel"] == pytest.approx(0.2 / np.sqrt(50 * 8), rel=0.05)
    same = gpu_check.dump_difference(reference, reference)
    assert same["max_rel"] == same["rms_rel"] == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        gpu_check.dump_difference(reference[:2], reference)


def test_table_escapes_pipes_and_states_seconds():
    rows = [gpu_check.Row("dumps", "pass", "max |Δ| 0.1 std", 2.345)]
    text = gpu_check.markdown_table(rows)
    assert text.splitlines()[0] == "| check | result | figure | time |"
    assert text.splitlines()[2] == "| dumps | pass | max \\|Δ\\| 0.1 std | 2.3 s |"


def test_every_carried_wheel_is_pinned_by_the_lock(tmp_path):
    """The printed pip commands name exact versions: each package the CUDA machine lacks has
    its pin in requirements.lock (bitsandbytes, in no lock, its own)."""
    pins = gpu_check.lock_pins()
    unpinned = [d for d in gpu_check.DEVICE_WHEELS if gpu_check._normalise(d) not in pins]
    assert not unpinned
    commands = gpu_check.wheels_commands("3.12")
    words = commands.split()
    pinned = [w for w in words if "==" in w]
    assert len(pinned) == len(gpu_check.DEVICE_WHEELS) + 1
    assert gpu_check.BITSANDBYTES_PIN in pinned and pins["datasets"] in pinned
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", w) for w in pinned)
    # the source-only ones are built with pip wheel, not asked for as binaries
    wheel_line = next(line for line in commands.splitlines() if " wheel " in line)
    assert all(p.split("==")[0] in wheel_line for p in gpu_check.SDIST_ONLY)
    lock = tmp_path / "lock"
    lock.write_text("# a comment\nFoo_Bar==1.2  # why\nbaz==3\n")
    assert gpu_check.lock_pins(lock) == {"foo-bar": "Foo_Bar==1.2", "baz": "baz==3"}


def test_missing_names_the_distribution_not_the_module():
    assert gpu_check.missing({"json": "stdlib-json"}) == []
    assert gpu_check.missing({"no_such_module_xyz": "no-such-dist"}) == ["no-such-dist"]
