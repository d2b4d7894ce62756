"""Scratch LLaMA and T5: deterministic builds with the real families' architectures and
tokenizers, heads that read padded batches right, and T5's dumps of its encoder stack."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bioprobe.analysis.extract import DumpSettings, extract, pad
from bioprobe.analysis.pooling import masked_mean, resolve_joint_pooling, sentence_pooling
from bioprobe.config import validate_config
from bioprobe.data.demo import task_config
from bioprobe.errors import ConfigError
from bioprobe.models import (
    build_scratch,
    load_model_for_task,
    load_tokenizer_for,
    position_limit,
    resolve_model,
)
from bioprobe.scratch import key_value_heads, validate_scratch
from bioprobe.tokenization import encode_pair, encode_words, word_start_id

from .conftest import outputs_under_hash_seeds

PAIR_LABELS = ["contradiction", "entailment", "neutral"]
NER_LABELS = ["O", "B-Chemical", "I-Chemical"]


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# builds


@pytest.mark.parametrize("family", ["llama", "t5"])
def test_build_is_deterministic(family, request, tiny_scratch, bio_corpus, tmp_path):
    built = request.getfixturevalue(f"tiny_{family}_dir")
    again = tmp_path / "again"
    build_scratch(tiny_scratch[family], bio_corpus, again, seed=0)
    assert _digest(again) == _digest(built)
    other = tmp_path / "other-seed"
    build_scratch(tiny_scratch[family], bio_corpus, other, seed=1)
    assert _digest(other)["model.safetensors"] != _digest(built)["model.safetensors"]
    assert _digest(other)["tokenizer.json"] == _digest(built)["tokenizer.json"]


def test_tokenizers_are_deterministic_across_hash_seeds(bio_corpus):
    """The pieces come from `train_bpe` and the T5 scores from sorted counts: the same bytes
    whatever Python's hash seed."""
    code = (
        "import hashlib, json, sys;"
        "from bioprobe.scratch import _llama_tokenizer, _t5_tokenizer;"
        "c = json.load(sys.stdin);"
        "s = _llama_tokenizer(c, 450).backend_tokenizer.to_str()"
        " + _t5_tokenizer(c, 300).backend_tokenizer.to_str();"
        "print(hashlib.sha256(s.encode()).hexdigest())"
    )
    outs = outputs_under_hash_seeds(code, json.dumps(bio_corpus))
    assert len(outs) == 1


def test_llama_is_a_grouped_query_rotary_rmsnorm_decoder(tiny_llama_dir, tiny_scratch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, use_safetensors=True)
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("llama", 2, 32)
    # grouped-query attention: 2 query heads share 1 key/value head of size 16
    assert (config.num_attention_heads, config.num_key_value_heads) == (2, 1)
    attention = model.model.layers[0].self_attn
    assert (attention.q_proj.out_features, attention.k_proj.out_features) == (32, 16)
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"
    assert config.rope_parameters["rope_theta"] > 0  # rotary: no position table
    assert not config.tie_word_embeddings
    assert (key_value_heads(8), key_value_heads(3), key_value_heads(1)) == (4, 3, 1)

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    assert type(tok).__name__ == "LlamaTokenizer"
    assert tok.pad_token is None  # as LLaMA ships: bioprobe's loader sets pad = eos
    assert tok.convert_ids_to_tokens(list(range(4))) == ["<unk>", "<s>", "</s>", "<0x00>"]
    assert len(tok) == tiny_scratch["llama"]["vocab_size"] == config.vocab_size
    ids = tok("Aspirin reduces fever")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids
    assert tok.convert_ids_to_tokens(tok("é", add_special_tokens=False)["input_ids"]) == [
        "▁",
        "<0xC3>",
        "<0xA9>",
    ]  # byte fallback, not a dropped character
    spec = resolve_model("m", {"source": "scratch", "scratch": tiny_scratch["llama"]})
    assert (spec.family, spec.is_decoder) == ("llama", True)


def test_t5_is_an_encoder_decoder_with_a_unigram_tokenizer(tiny_t5_dir, tiny_scratch):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5_dir, use_safetensors=True)
    config = model.config
    assert config.model_type == "t5" and config.is_encoder_decoder
    assert (config.num_layers, config.num_decoder_layers, config.d_model) == (2, 2, 32)
    # T5 v1.1 / FLAN-T5: gated-GELU, the decoder's output not rescaled before the LM head
    assert config.feed_forward_proj == "gated-gelu" and config.scale_decoder_outputs is False
    assert (config.pad_token_id, config.eos_token_id, config.decoder_start_token_id) == (0, 1, 0)

    tok = AutoTokenizer.from_pretrained(tiny_t5_dir)
    assert type(tok).__name__ == "T5Tokenizer"
    assert type(tok.backend_tokenizer.model).__name__ == "Unigram"
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "</s>", "<unk>"]
    assert not [t for t in tok.get_vocab() if t.startswith("<extra_id")]
    assert tok("Aspirin reduces fever")["input_ids"][-1] == tok.eos_token_id
    assert len(tok) == config.vocab_size <= tiny_scratch["t5"]["vocab_size"]
    spec = resolve_model("m", {"source": "scratch", "scratch": tiny_scratch["t5"]})
    assert (spec.family, spec.is_decoder) == ("t5", False)


def test_no_position_table_no_length_limit(tiny_llama_dir, tiny_t5_dir):
    """LLaMA's rotary and T5's relative positions: `max_length` is not refused at any length,
    though T5 configs note their pretraining length as n_positions."""
    for path in (tiny_llama_dir, tiny_t5_dir):
        assert position_limit(json.loads((path / "config.json").read_text())) is None
    assert position_limit({"model_type": "t5", "n_positions": 512}) is None


def test_scratch_entries_of_the_new_families_validate(tiny_scratch, tmp_path):
    config = validate_config(
        {
            "tasks": {"t": {**task_config("ner"), "path": str(tmp_path)}},
            "models": {f: {"source": "scratch", "scratch": {"family": f}} for f in ("llama", "t5")},
        }
    )
    assert config["models"]["llama"]["scratch"]["family"] == "llama"
    with pytest.raises(ConfigError, match="family"):
        validate_config(
            {
                "tasks": {"t": {**task_config("ner"), "path": str(tmp_path)}},
                "models": {"m": {"source": "scratch", "scratch": {"family": "mistral"}}},
            }
        )
    # rotary positions rotate pairs of dimensions: an odd head size cannot
    odd = {**tiny_scratch["llama"], "hidden_size": 30, "num_heads": 2}
    with pytest.raises(ConfigError, match=r"models\.m\.scratch\.hidden_size.*head size"):
        validate_scratch(odd, "models.m.scratch")
    validate_scratch({**odd, "family": "t5"})  # T5 has no rotary positions


# ---------------------------------------------------------------------------------------------
# heads: a padded batch gives each example the logits it gets alone


@pytest.mark.parametrize("task_type", ["ner", "pair"])
@pytest.mark.parametrize("family", ["llama", "t5"])
def test_heads_read_padded_batches_right(family, task_type, request):
    """LLaMA pads with eos (its sequence head pools the last non-pad token); T5 with <pad>
    (its sequence head reads the decoder at the last eos, two in every pair)."""
    path = request.getfixturevalue(f"tiny_{family}_dir")
    spec = resolve_model(family, {"source": str(path)})
    tok = load_tokenizer_for(spec)
    labels = NER_LABELS if task_type == "ner" else PAIR_LABELS
    model = load_model_for_task(None, task_type, labels, spec=spec, seed=0).eval()
    expected = {
        ("llama", "ner"): "LlamaForTokenClassification",
        ("llama", "pair"): "LlamaForSequenceClassification",
        ("t5", "ner"): "T5ForTokenClassification",
        ("t5", "pair"): "T5ForSequenceClassification",
    }
    assert type(model).__name__ == expected[family, task_type]
    assert model.config.pad_token_id == tok.pad_token_id is not None
    long, short = "Aspirin reduces fever in patients with arthritis .", "Insulin ."
    if task_type == "ner":
        encs = [encode_words(tok, long.split(" "), 64), encode_words(tok, short.split(" "), 64)]
    else:
        encs = [encode_pair(tok, long, "Yes .", 64), encode_pair(tok, short, "No .", 64)]
    with torch.no_grad():
        batched = model(**pad(tok, encs)).logits
        for row, enc in enumerate(encs):
            alone = model(**pad(tok, [enc])).logits[0]
            torch.testing.assert_close(batched[row, : len(alone)], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "t5"])
def test_relation_entities_sit_on_the_placeholders_first_piece_with_characters(family, request):
    """A placeholder opens with a bare '▁' in these vocabularies: its entity position is the
    piece after it (a decoder's state at the bare '▁' has seen nothing of the placeholder)."""
    from bioprobe.tasks.relation import encode, words

    tok = load_tokenizer_for(
        resolve_model(family, {"source": str(request.getfixturevalue(f"tiny_{family}_dir"))})
    )
    record = {"text": "The @GENE$ mutation increases the risk of breast cancer (@DISEASE$)."}
    enc = encode(tok, record, SimpleNamespace(max_length=64))
    sentence = words(record["text"])
    space = word_start_id(tok)
    for position, word in zip(enc.entities, ("@DISEASE$", "@GENE$"), strict=True):
        alone = tok(word, add_special_tokens=False)["input_ids"]
        assert alone[0] == space and len(alone) > 1  # '▁', then the placeholder's characters
        assert enc.input_ids[position - 1 : position + len(alone) - 1] == alone
        word_index = encode_words(tok, sentence, 64).word_index
        assert word_index[position] == sentence.index(word) and word_index[position - 1] == -1


# ---------------------------------------------------------------------------------------------
# dumps: a T5 is analysed through its encoder stack


def test_sentence_pooling_of_each_architecture():
    assert sentence_pooling(is_decoder=False) == "cls"
    assert sentence_pooling(is_decoder=True) == "last"
    assert sentence_pooling(is_decoder=False, encoder_decoder=True) == "mean"
    assert resolve_joint_pooling("auto", False, encoder_decoder=True) == "mean"
    assert resolve_joint_pooling("cls", False, encoder_decoder=True) == "cls"


@pytest.fixture(scope="module")
def t5_deeper_decoder(tiny_t5_dir, tmp_path_factory):
    """The tiny T5 with 3 decoder layers to its 2 encoder layers: which stack is counted shows."""
    from transformers import AutoConfig, AutoTokenizer, T5ForConditionalGeneration

    config = AutoConfig.from_pretrained(tiny_t5_dir)
    config.num_decoder_layers = 3
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("t5-deeper") / "model"
    T5ForConditionalGeneration(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_t5_dir).save_pretrained(out)
    return out


def _pairs(corpus: list[str]) -> list[dict]:
    out = []
    for i, sentence in enumerate(corpus):
        words = sentence.split()[: 4 + i % 7]
        half = len(words) // 2
        label = PAIR_LABELS[i % 3]
        out.append(
            {
                "id": f"p{i}",
                "text_a": " ".join(words[:half]),
                "text_b": " ".join(words[half:]),
                "label": label,
            }
        )
    return out


def test_t5_dump_reads_the_encoder_stack(t5_deeper_decoder, bio_corpus, tmp_path):
    spec = resolve_model("t5", {"source": str(t5_deeper_decoder)})
    tok = load_tokenizer_for(spec)
    model = load_model_for_task(
        None, "pair", PAIR_LABELS, spec=spec, seed=0, attn_implementation="eager"
    ).eval()
    assert model.config.is_encoder_decoder
    records = _pairs(bio_corpus[:10])
    settings = DumpSettings(batch_size=4, attention_max_examples=3, dtype="float32")
    meta = extract(
        model=model,
        tokenizer=tok,
        task_type="pair",
        splits={"validation": records[:4], "test": records[4:]},
        settings=settings,
        out_dir=tmp_path / "dump",
        provenance={"is_decoder": False},
    )
    # layers: the embeddings and the 2 encoder blocks, not the 3 decoder blocks
    assert (meta["n_layers"], meta["num_heads"], meta["hidden_size"]) == (2, 2, 32)
    hidden = np.load(tmp_path / "dump" / "test.hidden.npy")
    assert hidden.shape == (3, 6, 32)
    assert np.load(tmp_path / "dump" / "test.separate.npy").shape == (3, 6, 64)

    # joint vectors: the masked mean of the encoder's states of the pair encoded together
    encs = [encode_pair(tok, r["text_a"], r["text_b"], 128) for r in records[4:]]
    batch = pad(tok, encs)
    with torch.no_grad():
        states = model.get_encoder()(**batch, output_hidden_states=True).hidden_states
    expected = masked_mean(torch.stack(states), batch["attention_mask"])
    np.testing.assert_allclose(hidden, expected.numpy(), rtol=1e-5, atol=1e-5)

    # attention maps: the encoder's self-attention, [2 layers, 2 heads, T, T] per example
    lengths = meta["attention"]["lengths"]
    maps = np.load(tmp_path / "dump" / "attention.npy")
    assert maps.size == sum(2 * 2 * t * t for t in lengths)
    first = maps[: 2 * 2 * lengths[0] ** 2].reshape(2, 2, lengths[0], lengths[0])
    np.testing.assert_allclose(first.sum(-1), 1.0, atol=1e-5)
    assert meta["attention"]["tokens"][0][-1] == "</s>"


# ---------------------------------------------------------------------------------------------
# what a method cannot do on a family


def test_prompt_methods_on_a_t5_sequence_task_are_refused_naming_the_method(tiny_t5_dir):
    from bioprobe.methods import check_model_supported, load_for_training

    prompt = {"pt": {"kind": "prompt-tuning", "num_virtual_tokens": 4, "init_text": None}}
    t5 = {"model_type": "t5"}
    with pytest.raises(ConfigError, match=r"methods\.pt.*models\.m.*sequence head") as info:
        check_model_supported(prompt, t5, "pair", "models.m")
    assert info.value.key == "methods.pt"
    check_model_supported(prompt, t5, "ner", "models.m")  # T5's token head is the encoder's
    check_model_supported(prompt, {"model_type": "llama"}, "pair", "models.m")
    check_model_supported({"lora": {"kind": "lora"}}, t5, "pair", "models.m")
    # the job checks the loaded model's config too (a Hub model unknown at planning)
    spec = resolve_model("m", {"source": str(tiny_t5_dir)})
    with pytest.raises(ConfigError, match="sequence head"):
        load_for_training(
            str(tiny_t5_dir), "pair", PAIR_LABELS, spec=spec, method=prompt["pt"],
            max_length=32, method_id="pt",
        )  # fmt: skip


def test_a_bf16_llama_loads_without_a_float32_copy(tiny_llama_dir):
    spec = resolve_model("m", {"source": str(tiny_llama_dir), "dtype": "bfloat16"})
    model = load_model_for_task(None, "pair", PAIR_LABELS, spec=spec)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_lora_adapts_every_projection_of_a_t5(tiny_t5_dir):
    from bioprobe.methods import load_for_training

    spec = resolve_model("m", {"source": str(tiny_t5_dir)})
    lora = {"kind": "lora", "r": 2, "alpha": 4, "dropout": 0.0, "bias": "none"}
    model = load_for_training(
        str(tiny_t5_dir), "ner", NER_LABELS, spec=spec, method={**lora, "target_modules": None},
        max_length=32, method_id="lora",
    )  # fmt: skip
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters()
               if ".lora_A" in n}  # fmt: skip
    assert {"q", "k", "v", "o", "wo"} <= adapted and adapted & {"wi", "wi_0", "wi_1"}
