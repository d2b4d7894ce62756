"""Attention examples: the tokens a dump stores with its maps, the heads that changed most, the
per-example figure and the offline head view."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from transformers import AutoModel

from bioprobe.analysis.dumpio import ATTENTION, META, AttentionWriter, read_attention
from bioprobe.analysis.examples import (
    head_changes,
    load_examples,
    select_examples,
    top_heads,
)
from bioprobe.analysis.extract import DumpSettings, extract
from bioprobe.errors import BioprobeError
from bioprobe.plotting.examples import build_attention_examples, display_token
from bioprobe.plotting.headview import head_view_html
from bioprobe.tasks import ner, pair
from bioprobe.tokenization import load_tokenizer

# ------------------------------------------------------------------ tokens in the dumps


def _records(task_type: str, corpus: list[str]) -> list[dict]:
    out = []
    for i, sentence in enumerate(corpus):
        words = sentence.split()[: 4 + i % 7]
        if task_type == "ner":
            tags = ["B-X" if w[0].isupper() else "O" for w in words]
            out.append({"id": f"s{i}", "tokens": words, "tags": tags})
        else:
            half = len(words) // 2
            text_a, text_b = " ".join(words[:half]), " ".join(words[half:])
            out.append({"id": f"p{i}", "text_a": text_a, "text_b": text_b, "label": "yes"})
    return out


@pytest.mark.parametrize("task_type", ["ner", "pair"])
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_dump_stores_the_tokens_of_each_attention_map(
    family, task_type, request, bio_corpus, tmp_path, one_torch_thread
):
    """An encoder and a decoder: per attention example, exactly the T real tokens of its
    T × T maps, in order, as the tokenizer spells the ids the model was fed."""
    location = str(request.getfixturevalue(f"tiny_{family}_dir"))
    tokenizer = load_tokenizer(location)
    model = AutoModel.from_pretrained(location, attn_implementation="eager")
    # varied lengths, so the attention set's batches are padded
    records = _records(task_type, bio_corpus[:12])
    settings = DumpSettings(batch_size=4, attention_max_examples=5, dtype="float32")
    extract(
        model=model,
        tokenizer=tokenizer,
        task_type=task_type,
        splits={"test": records},
        settings=settings,
        out_dir=tmp_path / "dump",
        provenance={},
    )
    meta = json.loads((tmp_path / "dump" / META).read_text())
    info = meta["attention"]
    assert len(info["tokens"]) == info["n_examples"] == 5
    assert [len(t) for t in info["tokens"]] == info["lengths"]
    assert len(set(info["lengths"])) > 1  # the set spans lengths: padding was cut
    encode = {"ner": ner.encode, "pair": pair.encode}[task_type]
    maps = read_attention(
        tmp_path / "dump" / ATTENTION, info["lengths"], meta["n_layers"], meta["num_heads"]
    )
    for record, tokens, m in zip(records, info["tokens"], maps, strict=False):
        ids = encode(tokenizer, record, settings)
        ids = ids.input_ids if hasattr(ids, "input_ids") else ids["input_ids"]
        assert tokens == tokenizer.convert_ids_to_tokens(ids)
        assert m.shape[-2:] == (len(tokens), len(tokens))
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-4)


def test_prompt_tuning_dump_stores_the_real_tokens_only(
    tiny_gpt2_dir, bio_corpus, tmp_path, one_torch_thread
):
    """A prompt method's virtual tokens are cut from the maps (`real_tokens_only`) and are no
    input ids: the stored tokens are the real ones, as many as the maps' rows."""
    from bioprobe.config import validate_config
    from bioprobe.methods import load_for_training
    from bioprobe.models import resolve_model

    from .test_config import minimal

    config = validate_config(minimal(methods={"prompt-tuning": {"num_virtual_tokens": 3}}))
    spec = resolve_model("gpt2", {"source": str(tiny_gpt2_dir)})
    tokenizer = load_tokenizer(str(tiny_gpt2_dir))
    model = load_for_training(
        str(tiny_gpt2_dir),
        "pair",
        ["yes", "no"],
        spec=spec,
        method=config["methods"]["prompt-tuning"],
        max_length=32,
    )
    records = _records("pair", bio_corpus[:6])
    settings = DumpSettings(
        batch_size=3, attention_max_examples=3, dtype="float32", max_length=32, virtual_tokens=3
    )
    meta = extract(
        model=model.eval(),
        tokenizer=tokenizer,
        task_type="pair",
        splits={"test": records},
        settings=settings,
        out_dir=tmp_path / "dump",
        provenance={},
    )
    info = meta["attention"]
    for record, tokens, length in zip(records, info["tokens"], info["lengths"], strict=False):
        ids = pair.encode(tokenizer, record, settings)["input_ids"]
        assert tokens == tokenizer.convert_ids_to_tokens(ids)
        assert len(tokens) == length == len(ids)
    maps = read_attention(
        tmp_path / "dump" / ATTENTION, info["lengths"], meta["n_layers"], meta["num_heads"]
    )
    assert [m.shape[-1] for m in maps] == info["lengths"]


# ------------------------------------------------------------- heads that changed most


def _maps(rng, layers: int, heads: int, t: int) -> np.ndarray:
    """Random attention maps [L, heads, T, T], rows summing to 1."""
    m = rng.random((layers, heads, t, t)) + 0.05
    return (m / m.sum(-1, keepdims=True)).astype(np.float32)


def _focused(m: np.ndarray, layer: int, head: int, key: int) -> np.ndarray:
    """`m` with one head (0-based) attending from every token to `key` only."""
    out = m.copy()
    out[layer, head] = 0.0
    out[layer, head, :, key] = 1.0
    return out


def test_the_head_that_changed_most_is_found():
    rng = np.random.default_rng(0)
    pre = _maps(rng, 3, 4, 6)
    ft = _focused(pre, 2, 1, key=0)  # layer 3, head 2 rewired; a smaller change in layer 1
    ft[0, 3] = 0.8 * pre[0, 3] + 0.2 * np.eye(6)
    changes = head_changes(pre, ft)
    assert changes.shape == (3, 4)
    assert changes[1].max() == 0.0  # untouched layer
    assert top_heads(changes, 2) == [(3, 2), (1, 4)]  # 1-based, largest first
    assert top_heads(np.zeros((2, 2)), 3) == [(1, 1), (1, 2), (2, 1)]  # ties: lowest first


def test_examples_are_chosen_for_their_largest_change_among_short_ones():
    peaks = [0.1, 0.9, 0.5, 0.7, 0.3]
    lengths = [10, 50, 12, 8, 20]
    # example 1 changed most but is too long: the largest among those that fit
    assert select_examples(peaks, lengths, 2, max_tokens=20) == [3, 2]
    # fewer fit than asked: the shortest others follow, to be cropped
    assert select_examples(peaks, lengths, 3, max_tokens=9) == [3, 0, 2]


def _write_dump(path: Path, maps: list[np.ndarray], tokens: list[list[str]] | None) -> Path:
    path.mkdir()
    lengths = [m.shape[-1] for m in maps]
    layers, heads = maps[0].shape[:2]
    writer = AttentionWriter(path / ATTENTION, lengths, layers, heads, "float32")
    for i, m in enumerate(maps):
        writer.write(i, torch.from_numpy(m))
    writer.close()
    attention = {"split": "test", "n_examples": len(maps), "lengths": lengths}
    if tokens is not None:
        attention["tokens"] = tokens
    meta = {"n_layers": layers, "num_heads": heads, "attention": attention}
    (path / META).write_text(json.dumps(meta))
    return path


def test_load_examples_reads_both_dumps_and_checks_they_match(tmp_path):
    rng = np.random.default_rng(1)
    lengths = [5, 7, 4, 6]
    pre = [_maps(rng, 2, 3, t) for t in lengths]
    ft = [m.copy() for m in pre]
    ft[2] = _focused(pre[2], 1, 2, key=3)  # example 3 changed most
    ft[0] = 0.9 * pre[0] + 0.1 / 5
    tokens = [[f"w{i}.{j}" for j in range(t)] for i, t in enumerate(lengths)]
    a = _write_dump(tmp_path / "pre", pre, tokens)
    b = _write_dump(tmp_path / "ft", ft, tokens)
    examples = load_examples(a, b, n=2, max_tokens=6)
    assert [e.index for e in examples] == [2, 0]
    top = examples[0].most_changed()
    assert (top.layer, top.head) == (2, 3)
    assert top.js > 0.3 and top.cosine < 0.9
    assert examples[0].tokens == tokens[2]
    np.testing.assert_allclose(examples[0].finetuned, ft[2], atol=1e-6)
    # another attention set, or a dump from before tokens were stored: one clear error
    c = _write_dump(tmp_path / "other", pre, [t[::-1] for t in tokens])
    with pytest.raises(BioprobeError, match="differ in tokens"):
        load_examples(a, c)
    d = _write_dump(tmp_path / "old", pre, None)
    with pytest.raises(BioprobeError, match="stores no tokens"):
        load_examples(d, b)


# -------------------------------------------------------------- figure and head view


@pytest.fixture
def examples(tmp_path):
    rng = np.random.default_rng(2)
    lengths = [6, 40, 5]
    pre = [_maps(rng, 2, 2, t) for t in lengths]
    ft = [_focused(m, 1, 0, key=0) for m in pre]
    tokens = [["[CLS]", *[f"Ġword{j}" for j in range(t - 2)], "[SEP]"] for t in lengths]
    tokens[0][1] = "</script><b>x"  # must stay text in the page
    a = _write_dump(tmp_path / "pre", pre, tokens)
    b = _write_dump(tmp_path / "ft", ft, tokens)
    return load_examples(a, b, n=3, max_tokens=32)


def test_display_token_marks_word_starts_alike():
    assert display_token("Ġaspirin") == "▁aspirin"  # GPT-2's byte-level mark
    assert display_token("▁the") == "▁the"
    assert display_token("dose</w>") == "dose"
    assert display_token("##ing") == "##ing"
    assert display_token("Ġ") == "▁"
    assert display_token("a\nb") == "a\\nb"


def test_examples_figure_has_the_tokens_on_its_axes(examples):
    fig = build_attention_examples(examples, title="t · m", variant="full 100% seed 1")
    try:
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert len(panels) == 3 * 3  # examples × (pretrained, fine-tuned, difference)
        titles = [ax.get_title().split("\n") for ax in panels[:3]]
        assert [t[-1] for t in titles] == ["pretrained", "full 100% seed 1", "difference"]
        first = panels[0]
        assert [t.get_text() for t in first.get_xticklabels()] == [
            display_token(t) for t in examples[0].tokens
        ]
        assert first.get_xticklabels()[0].get_rotation() == 90
        # the 40-token example is cropped to 32, and says so
        long = next(k for k, e in enumerate(examples) if len(e.tokens) == 40)
        assert len(panels[3 * long].get_xticklabels()) == 32
        rows = [panels[3 * k + 1].get_title() for k in range(3)]
        assert "first 32 of 40 tokens" in rows[long]
        assert all("layer 2 head 1 changed most" in t for t in rows)
    finally:
        plt.close(fig)


def test_head_view_is_self_contained(examples):
    page = head_view_html(examples, title="t · m: head view", variant="full 100%")
    # no script, style sheet or font from elsewhere: it renders offline
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link\b", page)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    embedded = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    data = json.loads(embedded.group(1))
    assert [e["index"] for e in data["examples"]] == [e.index + 1 for e in examples]
    first = data["examples"][0]
    assert first["top"][0] == {"layer": 2, "head": 1, "js": pytest.approx(first["top"][0]["js"])}
    # the token that looks like markup travels as JSON text and cannot close the script
    assert "</script><b>" not in page.split('id="data">', 1)[1].split("</script>", 1)[0]
    long = next(e for e in data["examples"] if e["n_tokens"] == 40)
    assert len(long["tokens"]) == 32
