"""The dump's allocator setting (bioprobe.analysis.allocator)."""

import ctypes.util
import platform

import pytest

from bioprobe.analysis.allocator import fix_mmap_threshold


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_takes_the_fixed_mmap_threshold():
    assert ctypes.util.find_library("c")
    assert fix_mmap_threshold() is True
    assert fix_mmap_threshold() is True  # once per process, then cached
