"""Dump files: .npy arrays written with positional writes (no memory map while writing, so the
writer's resident memory does not grow with the number of examples), read back memory-mapped."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format


class NpyWriter:
    """A preallocated .npy file of `shape`, filled by row blocks along axis `axis` (0 or 1).

    Layout [L+1, N, H] with axis=1 keeps each layer contiguous for the probes; each write is one
    `pwrite` per layer of a block of rows, in any order.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: str, axis: int = 0):
        self.path, self.shape, self.dtype, self.axis = (
            Path(path),
            tuple(shape),
            np.dtype(dtype),
            axis,
        )
        header = {
            "descr": npy_format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        with open(self.path, "wb") as fh:
            npy_format.write_array_header_1_0(fh, header)
            self.offset = fh.tell()
        size = self.offset + int(np.prod(self.shape)) * self.dtype.itemsize
        os.truncate(self.path, size)
        self.fd = os.open(self.path, os.O_WRONLY)
        # bytes between consecutive entries of the write axis
        self.stride = int(np.prod(self.shape[axis + 1 :])) * self.dtype.itemsize

    def write(self, start: int, block: np.ndarray) -> None:
        """Write `block` at entry `start` of the write axis; a block already in the file's dtype
        whose rows are contiguous (a slice along axis 1 of one batch array) is not copied."""
        if self.axis == 0:
            block = np.ascontiguousarray(block, dtype=self.dtype)
            os.pwrite(self.fd, block, self.offset + start * self.stride)
            return
        per_outer = self.shape[1] * self.stride
        for i in range(self.shape[0]):
            rows = np.ascontiguousarray(block[i], dtype=self.dtype)
            os.pwrite(self.fd, rows, self.offset + i * per_outer + start * self.stride)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dump(path: str | Path) -> np.ndarray:
    """A dump array, memory-mapped read-only."""
    return np.load(path, mmap_mode="r")


def read_attention(path: str | Path, lengths: Sequence[int], n_layers: int, n_heads: int):
    """Yield each analysis example's [L, heads, T, T] map from a flat attention dump."""
    flat = np.load(path, mmap_mode="r")
    offset = 0
    for t in lengths:
        size = n_layers * n_heads * t * t
        yield np.asarray(flat[offset : offset + size]).reshape(n_layers, n_heads, t, t)
        offset += size
