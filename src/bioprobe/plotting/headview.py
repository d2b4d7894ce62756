"""An interactive attention head view as one self-contained HTML file: no script, style sheet or
font from anywhere else, so it renders offline and inside the Snakemake report.

The example's tokens stand in two columns, the attending tokens (queries) on the left and the
attended ones (keys) on the right; a line joins each pair, as opaque as the attention weight.
Selectors choose the example, layer and head; a switch shows the pretrained maps, the
fine-tuned ones, or their difference (orange: more attention after fine-tuning, purple: less).
Hovering a token on the left keeps only its lines. Buttons jump to the heads that changed most
on the example (Jensen–Shannon divergence, as in the figure).

The maps travel as JSON: per example and variant, [L, heads, T, T] weights quantised to bytes
(0–255, a step of 1/255: lines of lower weight are invisible anyway) in base64.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bioprobe.analysis.examples import AttentionExample, head_changes, top_heads
from bioprobe.io import atomic_path
from bioprobe.plotting.examples import display_token

__all__ = ["head_view_data", "head_view_html", "write_head_view"]

#: heads offered as "changed most" per example
TOP_HEADS = 5


def _quantise(maps: np.ndarray) -> str:
    """Weights in [0, 1] as base64 bytes (round(w · 255)), row-major."""
    data = np.clip(np.rint(np.asarray(maps, np.float32) * 255), 0, 255).astype(np.uint8)
    return base64.b64encode(data.tobytes()).decode("ascii")


def _example_data(example: AttentionExample, max_tokens: int) -> dict:
    t = min(len(example.tokens), max_tokens)
    changes = head_changes(example.pretrained, example.finetuned)
    heads = top_heads(changes, TOP_HEADS)
    return {
        "index": example.index + 1,
        "tokens": [display_token(tok) for tok in example.tokens[:t]],
        "n_tokens": len(example.tokens),
        "layers": int(example.pretrained.shape[0]),
        "heads": int(example.pretrained.shape[1]),
        "pretrained": _quantise(example.pretrained[:, :, :t, :t]),
        "finetuned": _quantise(example.finetuned[:, :, :t, :t]),
        "top": [
            {"layer": layer, "head": head, "js": float(f"{changes[layer - 1, head - 1]:.3g}")}
            for layer, head in heads
        ],
    }


def head_view_data(examples: Sequence[AttentionExample], max_tokens: int = 32) -> list[dict]:
    """What the page embeds: per example its tokens (cropped to `max_tokens`), shape, both
    variants' quantised maps and its most-changed heads."""
    return [_example_data(e, max_tokens) for e in examples]


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 16px; background: #fff; }
h1 { font-size: 17px; margin: 0 0 4px; }
p.note { margin: 0 0 10px; color: #555; max-width: 60em; }
.controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 8px; }
.controls label { display: flex; gap: 4px; align-items: center; }
.top button { margin-right: 4px; border: 1px solid #bbb; background: #f4f4f4; border-radius: 4px;
  padding: 1px 6px; cursor: pointer; font: inherit; }
.top button.on { background: #0072B2; color: #fff; border-color: #0072B2; }
svg text { font: 12px ui-monospace, monospace; fill: #222; cursor: default; }
svg text.dim { fill: #bbb; }
#caption { color: #555; margin-top: 4px; }
"""

_SCRIPT = """
const DATA = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
const COLORS = {pretrained: "#0072B2", finetuned: "#D55E00", up: "#E66100", down: "#5D3A9B"};
const ROW = 18, GAP = 220, PAD = 8;
let maps = {}, focus = null;

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function options(select, n, label) {
  select.innerHTML = "";
  for (let i = 1; i <= n; i++) select.add(new Option(label + " " + i, i));
}
function example() { return DATA.examples[$("example").value]; }
function loadExample() {
  const ex = example();
  maps = {pretrained: bytes(ex.pretrained), finetuned: bytes(ex.finetuned)};
  options($("layer"), ex.layers, "layer");
  options($("head"), ex.heads, "head");
  const top = $("top");
  top.innerHTML = "changed most: ";
  ex.top.forEach((h, k) => {
    const b = document.createElement("button");
    b.textContent = "L" + h.layer + " H" + h.head + " (JS " + h.js.toPrecision(2) + ")";
    b.onclick = () => { $("layer").value = h.layer; $("head").value = h.head; draw(); };
    top.appendChild(b);
  });
  $("layer").value = ex.top[0].layer;
  $("head").value = ex.top[0].head;
  focus = null;
  draw();
}
function weight(name, l, h, i, j, t, nh) {
  return maps[name][(((l * nh) + h) * t + i) * t + j] / 255;
}
function draw() {
  const ex = example(), t = ex.tokens.length, nh = ex.heads;
  const l = $("layer").value - 1, h = $("head").value - 1, mode = $("mode").value;
  const svg = $("view"), width = 2 * 170 + GAP, height = t * ROW + 2 * PAD;
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  let parts = [];
  for (let i = 0; i < t; i++) {
    if (focus !== null && i !== focus) continue;
    for (let j = 0; j < t; j++) {
      let w, color;
      if (mode === "difference") {
        w = weight("finetuned", l, h, i, j, t, nh) - weight("pretrained", l, h, i, j, t, nh);
        color = w > 0 ? COLORS.up : COLORS.down;
        w = Math.abs(w);
      } else {
        w = weight(mode, l, h, i, j, t, nh);
        color = COLORS[mode];
      }
      if (w < 0.01) continue;
      const y1 = PAD + i * ROW + ROW / 2, y2 = PAD + j * ROW + ROW / 2;
      parts.push('<line x1="170" y1="' + y1 + '" x2="' + (170 + GAP) + '" y2="' + y2 +
        '" stroke="' + color + '" stroke-width="2" stroke-opacity="' + w.toFixed(3) + '"/>');
    }
  }
  ex.tokens.forEach((tok, i) => {
    const y = PAD + i * ROW + ROW / 2 + 4;
    const dim = focus !== null && focus !== i ? ' class="dim"' : "";
    parts.push('<text x="164" y="' + y + '" text-anchor="end" data-i="' + i + '"' + dim + ">" +
      escape(tok) + "</text>");
    parts.push('<text x="' + (176 + GAP) + '" y="' + y + '">' + escape(tok) + "</text>");
  });
  svg.innerHTML = parts.join("");
  svg.querySelectorAll("text[data-i]").forEach((el) => {
    el.onmouseenter = () => { focus = Number(el.dataset.i); draw(); };
  });
  svg.onmouseleave = () => { if (focus !== null) { focus = null; draw(); } };
  document.querySelectorAll("#top button").forEach((b, k) => {
    const top = ex.top[k];
    b.className = top.layer === l + 1 && top.head === h + 1 ? "on" : "";
  });
  const crop = t < ex.n_tokens ? " (first " + t + " of " + ex.n_tokens + " tokens)" : "";
  $("caption").textContent = "example " + ex.index + crop + ", layer " + (l + 1) + ", head " +
    (h + 1) + ": " + $("mode").selectedOptions[0].text + ". Left: attending token; right: " +
    "attended token.";
}
function escape(s) {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
DATA.examples.forEach((ex, k) => $("example").add(new Option("example " + ex.index, k)));
["layer", "head", "mode"].forEach((id) => $(id).onchange = () => { focus = null; draw(); });
$("example").onchange = loadExample;
loadExample();
"""


def head_view_html(
    examples: Sequence[AttentionExample], *, title: str, variant: str, max_tokens: int = 32
) -> str:
    """The page: `title` (task and model), the fine-tuned `variant`'s label, the examples."""
    if not examples:
        raise ValueError("no attention examples for the head view")
    payload = {"variant": variant, "examples": head_view_data(examples, max_tokens)}
    # "</" cannot end the embedding script element early: JSON allows "<\\/" for "</"
    data = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="note">Attention of one head on one example: each token on the left attends to the
tokens on the right, a line as opaque as its weight. Pretrained model, fine-tuned model
({esc(variant)}), or their difference (orange: more attention after fine-tuning, purple: less).
Hover a token on the left to see only its lines.</p>
<div class="controls">
<label><select id="example"></select></label>
<label><select id="layer"></select></label>
<label><select id="head"></select></label>
<label><select id="mode">
<option value="pretrained">pretrained</option>
<option value="finetuned" selected>fine-tuned ({esc(variant)})</option>
<option value="difference">difference (fine-tuned − pretrained)</option>
</select></label>
</div>
<div class="controls top" id="top"></div>
<svg id="view" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="caption"></div>
<script type="application/json" id="data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_head_view(
    examples: Sequence[AttentionExample],
    path: str | Path,
    *,
    title: str,
    variant: str,
    max_tokens: int = 32,
) -> Path:
    """`head_view_html` written atomically to `path`."""
    path = Path(path)
    page = head_view_html(examples, title=title, variant=variant, max_tokens=max_tokens)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path
