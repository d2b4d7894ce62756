"""One figure style for every bioprobe figure: colour-blind-safe colours, sizes, saving.

Colours carry the same meaning in every figure:

- models: seaborn's ``colorblind`` palette (Okabe–Ito-like), assigned in sorted model order;
- training sizes: a sequential viridis ramp (light = little data, dark = all of it; the ramp
  stops short of viridis' pale yellow so every line reads on white), the pretrained model
  (size 0) black, the random-weights control grey and dotted.

`save_figure` writes ``<stem>.png`` (150 dpi, for the report) and ``<stem>.pdf`` (vector, for
papers) without timestamps or version strings, so a rerun on the same input gives the same bytes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.figure import Figure

from bioprobe.io import atomic_path

__all__ = [
    "DPI",
    "PRETRAINED_COLOR",
    "RANDOM_COLOR",
    "figure_size",
    "model_colors",
    "model_markers",
    "save_figure",
    "size_colors",
    "style_context",
    "tick_step",
]

DPI = 150
PANEL_W = 3.0  # inches per panel: legible at 100 % in a two-column paper when split across rows
PANEL_H = 2.4
LEGEND_W = 1.9  # room for a legend outside the panels, on the right
PRETRAINED_COLOR = (0.0, 0.0, 0.0)
RANDOM_COLOR = (0.55, 0.55, 0.55)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")

_RC = {
    "pdf.fonttype": 42,  # embed TrueType: text stays text in the PDF
    "ps.fonttype": 42,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8.5,
    "figure.titlesize": 11,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "figure.constrained_layout.use": True,
    "savefig.facecolor": "white",
}


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """Seaborn's whitegrid/paper look plus our sizes, for the duration of the block only."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper"), **_RC}
    rc["axes.prop_cycle"] = mpl.cycler(color=sns.color_palette("colorblind"))
    with plt.rc_context(rc):
        yield


def model_colors(models: Iterable[str]) -> dict[str, tuple]:
    """Model -> colour from the colour-blind palette, by sorted name (stable across figures)."""
    names = sorted(set(models))
    pal = sns.color_palette("colorblind", 10)
    return {m: pal[i % len(pal)] for i, m in enumerate(names)}


def model_markers(models: Iterable[str]) -> dict[str, str]:
    names = sorted(set(models))
    return {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(names)}


def size_colors(sizes: Iterable[int]) -> dict[int, tuple]:
    """Training size -> colour: 0 black (pretrained), the others along a viridis ramp."""
    ordered = sorted({int(s) for s in sizes if int(s) > 0})
    cmap = mpl.colormaps["viridis_r"]
    colors: dict[int, tuple] = {0: PRETRAINED_COLOR}
    for i, s in enumerate(ordered):
        frac = 0.2 + 0.72 * (i / (len(ordered) - 1) if len(ordered) > 1 else 1.0)
        colors[s] = tuple(cmap(frac)[:3])
    return colors


def figure_size(
    rows: int,
    cols: int,
    panel_w: float = PANEL_W,
    panel_h: float = PANEL_H,
    legend_w: float = LEGEND_W,
    extra_h: float = 0.45,
) -> tuple[float, float]:
    """Figure inches for a rows × cols grid of panels plus a legend column and a suptitle."""
    return cols * panel_w + legend_w, rows * panel_h + extra_h


def tick_step(n: int, max_ticks: int = 6) -> int:
    """A round step (1, 2, 4, 5, 10, 20, …) giving at most `max_ticks` labels over `n` items."""
    for step in (1, 2, 4, 5, 10, 20, 25, 50, 100):
        if math.ceil(n / step) <= max_ticks:
            return step
    return math.ceil(n / max_ticks)


def save_figure(
    fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "pdf"), dpi: int = DPI
) -> list[Path]:
    """Write `fig` as ``<stem>.png`` and ``<stem>.pdf``; return the paths written.

    Deterministic: no software version or creation date in the metadata, so identical figures
    give identical bytes. Each file is written atomically (a killed job leaves no half file).
    """
    stem = Path(stem)
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        if fmt == "png":
            metadata = {"Software": None}
        elif fmt == "pdf":
            metadata = {"Creator": "bioprobe", "Producer": None, "CreationDate": None}
        else:
            metadata = None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
        written.append(path)
    return written
