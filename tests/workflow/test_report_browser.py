"""The Snakemake report as a reader sees it: headless Chromium opens the report of the tiny run
and every figure, interactive view and table shows, with its caption beside it.

The report is one self-contained page whose React app keeps its state in memory (no URL
routes). A copy of it gets a small driver script that does what the eye and (i) buttons do for
the result named in the URL fragment (`app.setView`, `app.showResultInfo`) and writes what it
sees into `data-*` attributes of <body>, which `--dump-dom` prints; a screenshot of the same
page must not be blank where the result is shown.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from .conftest import snakemake

pytestmark = pytest.mark.workflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytestmark = [
        pytest.mark.workflow,
        pytest.mark.skip(reason="chromium is not installed (.ci/run installs it with apt-get)"),
    ]

WINDOW = (1600, 1000)

#: shows the result named in the URL fragment as the eye and (i) buttons would, then reports
#: on <body>: data-shown (the image's natural size, "frame" for an HTML result, or why not)
#: and data-caption (the caption text's length on the page)
DRIVER = """
<script>
(function () {
  const path = decodeURIComponent(location.hash.slice(1));
  function mark(key, value) { document.body.dataset[key] = String(value); }
  function start() {
    if (typeof app === "undefined" || !app) { setTimeout(start, 50); return; }
    const root = document.getElementById("app");
    mark("elements", root.querySelectorAll("*").length);  // what React rendered
    if (!path) {
      mark("shown", "landing");
      mark("described", root.innerText.includes("How to read this report"));
      return;
    }
    const entry = results[path];
    if (!entry) { mark("shown", "not in the report"); return; }
    const html = entry.mime_type === "text/html";
    // two clicks, one after the other (setView reads the state the previous call left)
    app.setView({content: html ? "html" : "img", contentPath: entry.data_uri, resultPath: path});
    setTimeout(() => app.showResultInfo(path), 100);
    setTimeout(() => check(entry, html), 300);
  }
  // polls until the caption and the result are on the page, for at most 100 tries
  function check(entry, html, tries = 0) {
    const caption = [...document.querySelectorAll("li")].find(
      (li) => li.previousSibling && li.previousSibling.textContent === "Description");
    const frame = document.querySelector("iframe");
    const img = [...document.images].find((i) => i.src === entry.data_uri);
    const ready = html ? frame && frame.src === entry.data_uri : img && img.complete;
    if (!(caption && ready) && tries < 100) {
      setTimeout(() => check(entry, html, tries + 1), 50);
      return;
    }
    mark("caption", caption ? caption.textContent.trim().length : 0);
    if (html) mark("shown", ready ? "frame" : "no frame");
    else mark("shown", ready ? img.naturalWidth + "x" + img.naturalHeight : "no image");
  }
  start();
})();
</script>
"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run in its own profile directory.

    A shared profile lets a second Chromium (another xdist worker) hand its URL to the first
    through the profile's singleton lock and wait forever; and headless Chromium now and then
    hangs on a --virtual-time-budget page (one of ~40 calls in a CI run): a run that outlasts
    90 s is killed and tried again, at most three times.
    """
    for attempt in range(3):
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            command = [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--virtual-time-budget=15000",
                *args,
            ]
            try:
                return subprocess.run(command, capture_output=True, text=True, timeout=90)
            except subprocess.TimeoutExpired:
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


def body_data(url: str) -> dict[str, str]:
    """The data-* attributes of <body> once the page has run its scripts."""
    dom = chromium("--dump-dom", url).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[-2000:]
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))


def screenshot(url: str, out: Path) -> Image.Image:
    result = chromium(f"--screenshot={out}", url)
    assert out.is_file(), result.stderr[-2000:]
    return Image.open(out).convert("RGB")


def ink(image: Image.Image) -> tuple[float, int]:
    """Share of pixels that are not near-white, and the number of distinct colours."""
    pixels = list(image.get_flattened_data())
    inked = sum(1 for p in pixels if min(p) < 235) / len(pixels)
    colours = image.getcolors(maxcolors=1 << 24)
    return inked, len(colours)


def report_results(report: Path) -> dict[str, dict]:
    html = report.read_text(encoding="utf-8")
    data = re.search(r'<script id="results">\s*var results = (.*?);\s*</script>', html, re.S)
    return json.loads(data.group(1))


@pytest.fixture(scope="module")
def driven_report(tiny_run) -> Path:
    """The tiny run's report, plus the driver script."""
    result = snakemake(tiny_run, "--report", "browser_report.html")
    assert result.returncode == 0, result.stderr[-4000:]
    page = (tiny_run / "browser_report.html").read_text(encoding="utf-8")
    driven = tiny_run / "browser_report_driven.html"
    # the last </body>: the page's inlined libraries hold the string in their code
    head, tag, tail = page.rpartition("</body>")
    driven.write_text(head + DRIVER + tag + tail, encoding="utf-8")
    return driven


def test_landing_page_says_what_was_run(driven_report, tmp_path):
    url = driven_report.as_uri()
    seen = body_data(url)
    assert seen.get("shown") == "landing", seen
    assert int(seen["elements"]) > 50, seen  # the app rendered, not the page's source
    assert seen.get("described") == "true", seen  # report/workflow.rst, on the landing page
    dom = chromium("--dump-dom", url).stdout
    for text in ("What was run", "demo-ner", "demo-nli", "tiny-bert", "tiny-gpt2", "seeds 1"):
        assert text in dom, text
    inked, colours = ink(screenshot(url, tmp_path / "landing.png"))
    assert inked > 0.05 and colours > 50, (inked, colours)


def test_every_figure_shows_with_its_caption(driven_report, tiny_run, tmp_path):
    results = report_results(driven_report)
    figures = {p for p, r in results.items() if r["mime_type"] == "image/png"}
    on_disk = {str(p.relative_to(tiny_run)) for p in (tiny_run / "results/figures").rglob("*.png")}
    assert figures == on_disk  # every figure the run drew is in the report, and only those
    views = {p for p, r in results.items() if r["mime_type"] == "text/html"}
    assert any("attention_view" in p for p in views)
    assert any(p.startswith("results/tables/") for p in views)
    for k, path in enumerate(sorted(figures | views)):
        assert results[path]["labels"], f"{path} has no label: the report lists it by path"
        url = f"{driven_report.as_uri()}#{quote(path, safe='')}"
        seen = body_data(url)
        assert int(seen.get("elements", 0)) > 50, (path, seen)
        if path in figures:
            width, height = map(int, seen.get("shown", "0x0").split("x"))
            assert width > 300 and height > 200, (path, seen)
        else:
            assert seen.get("shown") == "frame", (path, seen)
        assert int(seen.get("caption", 0)) > 100, (path, seen)  # the caption beside it
        # the right half of the window shows the result (the left one, the caption); a page
        # (a table, a head view) is mostly white around its text and lines
        shot = screenshot(url, tmp_path / f"{k}.png")
        inked, colours = ink(shot.crop((WINDOW[0] // 2, 0, WINDOW[0], WINDOW[1])))
        least = 0.01 if path in figures else 0.003
        assert inked > least and colours > 20, (path, inked, colours)


def test_head_view_renders_offline(tiny_run, tmp_path):
    views = sorted((tiny_run / "results/figures/attention_view").rglob("*.html"))
    assert views
    for k, view in enumerate(views):
        assert not re.search(r"<script[^>]*\bsrc=", view.read_text(encoding="utf-8"))
        # the script drew the example: its tokens in two columns, a line per attention weight
        dom = chromium("--dump-dom", view.as_uri()).stdout
        svg = re.search(r'<svg id="view".*?</svg>', dom, re.S)
        assert svg, dom[-2000:]
        tokens = re.findall(r"<text[^>]*>([^<]*)</text>", svg.group(0))
        assert len(tokens) >= 2 * 3 and len(tokens) % 2 == 0, tokens
        assert svg.group(0).count("<line") >= len(tokens) // 2, view
        inked, colours = ink(screenshot(view.as_uri(), tmp_path / f"view{k}.png"))
        assert inked > 0.02 and colours > 50, (view, inked, colours)
