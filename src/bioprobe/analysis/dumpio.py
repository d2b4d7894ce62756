"""Dump files: .npy arrays written with positional writes (no memory map while writing, so the
writer's resident memory does not grow with the number of examples), read back memory-mapped.

The names of the files in a variant's dump directory (layout: `bioprobe.analysis.extract`) and
the flat attention array's layout are defined here, for the writer and every reader.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib import format as npy_format

from bioprobe.io import read_json

if TYPE_CHECKING:  # attention and CKA jobs read dumps without importing torch
    import torch

#: what produced the dump (provenance incl. `task_type`, layer and head counts, attention lengths)
META = "meta.json"
#: per analysis example its [L, heads, T, T] attention map, flattened and concatenated
ATTENTION = "attention.npy"


def features_name(split: str, kind: str) -> str:
    """A split's unit vectors [L+1, units, width]; `kind`: ``hidden`` or ``separate`` (pairs)."""
    return f"{split}.{kind}.npy"


def units_file(split: str) -> str:
    """A split's unit labels, sentence lengths (NER), word types and example ids."""
    return f"{split}.units.json"


def read_meta(dump_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(dump_dir) / META)


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
            self._pwrite(block, self.offset + start * self.stride)
            return
        per_outer = self.shape[1] * self.stride
        for i in range(self.shape[0]):
            rows = np.ascontiguousarray(block[i], dtype=self.dtype)
            self._pwrite(rows, self.offset + i * per_outer + start * self.stride)

    def _pwrite(self, data: np.ndarray, offset: int) -> None:
        """All of `data` at `offset`. A disk that fills up takes part of a write and says
        nothing (the next write raises ENOSPC), so write the rest until it is written or fails;
        the error names this file."""
        view = memoryview(data.reshape(-1).view(np.uint8))
        try:
            while view:
                written = os.pwrite(self.fd, view, offset)
                if written == 0:  # no progress and no error: treat it as the full disk it is
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view, offset = view[written:], offset + written
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dump(path: str | Path) -> np.ndarray:
    """A dump array, memory-mapped read-only."""
    return np.load(path, mmap_mode="r")


def attention_offsets(lengths: Sequence[int], n_layers: int, n_heads: int) -> np.ndarray:
    """Where each example's [n_layers, n_heads, T, T] block starts in the flat attention array
    (T: the example's length); the last entry is the array's length."""
    block = [n_layers * n_heads * t * t for t in lengths]
    return np.concatenate([[0], np.cumsum(block)]).astype(np.int64)


class AttentionWriter:
    """Writes the trimmed attention maps of the analysis examples into one flat array."""

    def __init__(
        self, path: str | Path, lengths: list[int], n_layers: int, n_heads: int, dtype: str
    ):
        self.offsets = attention_offsets(lengths, n_layers, n_heads)
        self.writer = NpyWriter(path, (int(self.offsets[-1]),), dtype)
        self.lengths = lengths

    def write(self, index: int, maps: torch.Tensor) -> None:
        """Example `index`'s maps [L, heads, >=T, >=T], cut to its T real tokens."""
        t = self.lengths[index]
        block = maps[:, :, :t, :t].float().cpu().numpy().ravel()
        self.writer.write(int(self.offsets[index]), block)

    def close(self) -> None:
        self.writer.close()


def read_attention(
    path: str | Path, lengths: Sequence[int], n_layers: int, n_heads: int
) -> Iterator[np.ndarray]:
    """Yield each analysis example's [L, heads, T, T] map from a flat attention dump."""
    flat = open_dump(path)
    offsets = attention_offsets(lengths, n_layers, n_heads)
    for i, t in enumerate(lengths):
        block = flat[offsets[i] : offsets[i + 1]]
        yield np.asarray(block).reshape(n_layers, n_heads, t, t)
