"""Scratch models: tiny random-weight transformers with a tokenizer trained on the task corpus.

The demo cannot download BERT, GPT-2, BioGPT, LLaMA or T5, so it builds small models of the same
families: same architecture classes, same tokenizer classes (a BERT WordPiece ``BertTokenizer``,
a GPT-2 byte-level BPE ``GPT2Tokenizer``, a slow Moses + fastBPE ``BioGptTokenizer``, LLaMA's
SentencePiece-style BPE ``LlamaTokenizer`` and T5's SentencePiece-style Unigram ``T5Tokenizer``,
both with ``▁`` word-start pieces), random weights. The LLaMA has grouped-query attention (half
as many key/value heads as query heads where the head count is even), rotary positions and
RMSNorm; the T5 is a T5 v1.1 / FLAN-T5 (gated-GELU feed-forward, decoder outputs not rescaled)
with as many decoder as encoder layers. Neither has a position table: ``max_position`` is the
LLaMA's ``max_position_embeddings`` (rotary: no hard limit) and only the T5 tokenizer's
``model_max_length`` (relative position buckets).

The `tokenizers` library's trainers are not deterministic across processes (they iterate Rust
hash maps, so ties between equally frequent pairs break differently on every run), so the BPE
merges are learnt here by a small pure-Python trainer with a fixed tie-break; the vocabularies
are then handed to the real tokenizer classes. Same corpus and seed, same bytes.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.io import atomic_path
from bioprobe.seeding import derive_seed

FAMILIES = ("bert", "gpt2", "biogpt", "llama", "t5")
SCRATCH_KEYS = (
    "family",
    "hidden_size",
    "num_layers",
    "num_heads",
    "intermediate_size",
    "vocab_size",
    "max_position",
)
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT2_EOS = "<|endoftext|>"
BIOGPT_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq dictionary order: ids 0..3
LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]  # SentencePiece order of LLaMA-2 / Mistral: ids 0..2
T5_SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's ids 0..2 (T5Config's pad, eos; decoder start = pad)
WORD_START = "\u2581"  # SentencePiece's '▁': a piece that starts a word begins with it


def validate_scratch(cfg: Mapping[str, Any], key: str = "scratch") -> dict[str, Any]:
    """Check a ``scratch:`` entry; returns a plain dict. Errors name `key`."""
    if not isinstance(cfg, Mapping):
        raise ConfigError("must be a mapping", key)
    missing = [k for k in SCRATCH_KEYS if k not in cfg]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}", key)
    extra = sorted(set(cfg) - set(SCRATCH_KEYS) - {"seed"})  # seed: passed to build_scratch
    if extra:
        raise ConfigError(f"unknown {', '.join(extra)}", key)
    if cfg["family"] not in FAMILIES:
        raise ConfigError(f"family must be one of {', '.join(FAMILIES)}", f"{key}.family")
    for k in SCRATCH_KEYS[1:]:
        if not isinstance(cfg[k], int) or isinstance(cfg[k], bool) or cfg[k] < 1:
            raise ConfigError("must be a positive integer", f"{key}.{k}")
    if cfg["hidden_size"] % cfg["num_heads"]:
        raise ConfigError("hidden_size must be a multiple of num_heads", f"{key}.hidden_size")
    if cfg["family"] == "llama" and (cfg["hidden_size"] // cfg["num_heads"]) % 2:
        raise ConfigError(
            "llama: hidden_size / num_heads (the head size) must be even for rotary positions",
            f"{key}.hidden_size",
        )
    return dict(cfg)


def key_value_heads(num_heads: int) -> int:
    """A scratch LLaMA's key/value heads: half the query heads where that divides evenly
    (grouped-query attention, as LLaMA-3 and Mistral use), all of them for one head."""
    return num_heads // 2 if num_heads % 2 == 0 else num_heads


# --------------------------------------------------------------------------------------------
# BPE


def train_bpe(
    word_counts: Mapping[str, int],
    *,
    max_tokens: int,
    alphabet: Iterable[str] = (),
    prefix: str = "",
    suffix: str = "",
    min_frequency: int = 2,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Learn BPE merges over counted words; deterministic (ties go to the smallest pair).

    A word starts as its characters; with `prefix` (WordPiece ``##``) every character but the
    first carries it, with `suffix` (fastBPE ``</w>``) the last one does. Every character of
    the corpus and of `alphabet` enters the vocabulary in all the forms a word can produce.
    Returns (tokens, merges): the alphabet (sorted) then merged tokens in merge order, at most
    `max_tokens` of them (more only if the alphabet alone is larger), and the merges by rank.
    """
    words = sorted((w, c) for w, c in word_counts.items() if w)
    tokens = _base_tokens(words, alphabet, prefix, suffix)
    known = set(tokens)
    seqs = [_symbols(w, prefix, suffix) for w, _ in words]
    counts = [c for _, c in words]
    pair_counts, where = _count_pairs(seqs, counts)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while len(tokens) < max_tokens and heap:
        negative, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative:
            continue  # stale entry: the count changed and was pushed again
        if -negative < min_frequency:
            break
        a, b = pair
        new = a + (b[len(prefix) :] if prefix and b.startswith(prefix) else b)
        merges.append(pair)
        if new not in known:
            known.add(new)
            tokens.append(new)
        _merge_everywhere(pair, new, seqs, counts, pair_counts, where, heap)
    return tokens, merges


def _symbols(word: str, prefix: str, suffix: str) -> list[str]:
    """A word's starting symbols: its characters, marked as `train_bpe` describes."""
    out = [word[0]] + [prefix + c for c in word[1:]]
    out[-1] += suffix
    return out


def _base_tokens(
    words: list[tuple[str, int]], alphabet: Iterable[str], prefix: str, suffix: str
) -> list[str]:
    """Every character in every form a word can produce (bare, prefixed, suffixed), sorted."""
    chars = set(alphabet).union(*(set(w) for w, _ in words))
    forms = set()
    for c in chars:
        forms.update({c, prefix + c, c + suffix, prefix + c + suffix})
    return sorted(forms)


def _count_pairs(
    seqs: list[list[str]], counts: list[int]
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], set[int]]]:
    """Weighted count of each adjacent symbol pair, and the words it occurs in."""
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, seq in enumerate(seqs):
        for pair in pairwise(seq):
            pair_counts[pair] += counts[i]
            where[pair].add(i)
    return pair_counts, where


def _merge_everywhere(pair, new, seqs, counts, pair_counts, where, heap) -> None:
    """Apply one merge to every word holding `pair`; update the counts and push changed pairs.

    Only the words that hold the pair are touched (`where`), and only their pairs re-counted:
    recounting the whole corpus after every merge would be far slower.
    """
    a, b = pair
    changed = set()
    for i in sorted(where.pop(pair)):
        seq, n = seqs[i], counts[i]
        for p in pairwise(seq):
            pair_counts[p] -= n
            changed.add(p)
        out, j = [], 0
        while j < len(seq):
            if j + 1 < len(seq) and seq[j] == a and seq[j + 1] == b:
                out.append(new)
                j += 2
            else:
                out.append(seq[j])
                j += 1
        seqs[i] = out
        for p in pairwise(out):
            pair_counts[p] += n
            where[p].add(i)
            changed.add(p)
    for p in changed:
        if pair_counts[p] > 0:
            heapq.heappush(heap, (-pair_counts[p], p))
        else:
            pair_counts.pop(p)


# --------------------------------------------------------------------------------------------
# tokenizers of the families


def _bert_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizer

    norm = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        w for line in corpus for w, _ in pre.pre_tokenize_str(norm.normalize_str(line))
    )
    tokens, _ = train_bpe(counts, max_tokens=vocab_size - len(BERT_SPECIALS), prefix="##")
    vocab = {t: i for i, t in enumerate([*BERT_SPECIALS, *tokens])}
    return BertTokenizer(vocab=vocab, do_lower_case=True)


def _gpt2_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    from tokenizers import pre_tokenizers
    from transformers import GPT2Tokenizer

    # words as bioprobe feeds them: byte-level, each with its leading space
    pre = pre_tokenizers.ByteLevel(add_prefix_space=True)
    counts = Counter(w for line in corpus for w, _ in pre.pre_tokenize_str(line))
    tokens, merges = train_bpe(
        counts, max_tokens=vocab_size - 1, alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    vocab = {t: i for i, t in enumerate([*tokens, GPT2_EOS])}
    # saved like the real GPT-2 (add_prefix_space off); bioprobe's load_tokenizer turns it on
    return GPT2Tokenizer(vocab=vocab, merges=merges)


def _biogpt_tokenizer(corpus: list[str], vocab_size: int, work_dir: Path) -> Any:
    import sacremoses
    from transformers import BioGptTokenizer

    # BioGptTokenizer: Moses (aggressive dash splits, escaped) then fastBPE with '</w>'
    moses = sacremoses.MosesTokenizer(lang="en")
    counts = Counter(
        w
        for line in corpus
        for w in moses.tokenize(line, aggressive_dash_splits=True, return_str=False, escape=True)
    )
    tokens, merges = train_bpe(counts, max_tokens=vocab_size - len(BIOGPT_SPECIALS), suffix="</w>")
    vocab = {t: i for i, t in enumerate([*BIOGPT_SPECIALS, *tokens])}
    vocab_file, merges_file = work_dir / "vocab.json", work_dir / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False, indent=2) + "\n", "utf-8")
    merges_file.write_text("".join(f"{a} {b}\n" for a, b in merges), "utf-8")
    return BioGptTokenizer(vocab_file=str(vocab_file), merges_file=str(merges_file))


def _sentencepiece_words(corpus: list[str]) -> Counter:
    """Words as a SentencePiece tokenizer sees them: split at whitespace, each with ``▁`` in
    front (LLaMA's Metaspace and T5's both mark every word's start, the sentence's first too)."""
    return Counter(WORD_START + w for line in corpus for w in line.split())


def _llama_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    from transformers import LlamaTokenizer

    counts = _sentencepiece_words(corpus)
    # LlamaTokenizer's BPE falls back to byte tokens for a character it does not know, and
    # drops the character where they are missing: LLaMA-2's 256 of them follow the specials
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    budget = vocab_size - len(LLAMA_SPECIALS) - len(byte_tokens)
    tokens, merges = train_bpe(counts, max_tokens=budget, alphabet=[WORD_START])
    vocab = {t: i for i, t in enumerate([*LLAMA_SPECIALS, *byte_tokens, *tokens])}
    # as LLaMA-2 / Mistral ship it: <s> in front, no eos appended, no pad token (bioprobe's
    # load_tokenizer sets pad = eos, as for every decoder), Metaspace with prepend "first"
    return LlamaTokenizer(
        vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False, legacy=False
    )


def _t5_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    """T5's Unigram tokenizer over pieces learnt by `train_bpe`: each piece scored by the log
    of its frequency in the corpus segmented by those merges (a unigram language model over
    the BPE vocabulary; a piece the segmentation never produces gets the lowest score)."""
    import math

    from tokenizers import Tokenizer, models
    from transformers import T5Tokenizer

    counts = _sentencepiece_words(corpus)
    tokens, merges = train_bpe(
        counts, max_tokens=vocab_size - len(T5_SPECIALS), alphabet=[WORD_START]
    )
    bpe = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    used: Counter = Counter()
    for word, n in sorted(counts.items()):
        for piece in bpe.encode(word, add_special_tokens=False).tokens:
            used[piece] += n
    total = sum(used.values())
    floor = math.log(1 / (total + 1))
    scores = [(t, math.log(used[t] / total) if used[t] else floor) for t in tokens]
    # no sentinel tokens (<extra_id_*>): they serve span-corruption pretraining, not bioprobe
    return T5Tokenizer(vocab=[*((s, 0.0) for s in T5_SPECIALS), *scores], extra_ids=0)


# --------------------------------------------------------------------------------------------
# models


def _model(family: str, cfg: Mapping[str, Any], tokenizer: Any) -> Any:
    import transformers as tf

    common = {"vocab_size": len(tokenizer)}
    if family == "bert":
        config = tf.BertConfig(
            **common,
            hidden_size=cfg["hidden_size"],
            num_hidden_layers=cfg["num_layers"],
            num_attention_heads=cfg["num_heads"],
            intermediate_size=cfg["intermediate_size"],
            max_position_embeddings=cfg["max_position"],
            pad_token_id=tokenizer.pad_token_id,
        )
        return tf.BertForMaskedLM(config)
    if family == "gpt2":
        eos = tokenizer.eos_token_id
        config = tf.GPT2Config(
            **common,
            n_embd=cfg["hidden_size"],
            n_layer=cfg["num_layers"],
            n_head=cfg["num_heads"],
            n_inner=cfg["intermediate_size"],
            n_positions=cfg["max_position"],
            bos_token_id=eos,
            eos_token_id=eos,
        )
        return tf.GPT2LMHeadModel(config)
    if family == "llama":
        config = tf.LlamaConfig(
            **common,
            hidden_size=cfg["hidden_size"],
            num_hidden_layers=cfg["num_layers"],
            num_attention_heads=cfg["num_heads"],
            num_key_value_heads=key_value_heads(cfg["num_heads"]),
            intermediate_size=cfg["intermediate_size"],
            max_position_embeddings=cfg["max_position"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
        return tf.LlamaForCausalLM(config)
    if family == "t5":
        config = tf.T5Config(
            **common,
            d_model=cfg["hidden_size"],
            d_kv=cfg["hidden_size"] // cfg["num_heads"],
            d_ff=cfg["intermediate_size"],
            num_layers=cfg["num_layers"],
            num_decoder_layers=cfg["num_layers"],
            num_heads=cfg["num_heads"],
            feed_forward_proj="gated-gelu",
            # T5 v1.1's flag: transformers then leaves the decoder output unscaled
            tie_word_embeddings=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
        return tf.T5ForConditionalGeneration(config)
    config = tf.BioGptConfig(
        **common,
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_layers"],
        num_attention_heads=cfg["num_heads"],
        intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=cfg["max_position"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return tf.BioGptForCausalLM(config)


def build_scratch(
    spec_scratch: Mapping[str, Any], corpus: Iterable[str], out_dir: str | Path, seed: int
) -> None:
    """Build a tiny model of ``spec_scratch["family"]`` into `out_dir`, atomically.

    `corpus` is the task's training text, one string per sentence (NER: words joined by
    spaces). The tokenizer is trained on it (vocabulary of at most ``vocab_size`` entries, fewer
    on a small corpus; the model's embedding matches the tokenizer). Weights are random, drawn
    from a generator seeded with `seed` (the global torch RNG is left as it was). Writes
    ``config.json``, the tokenizer files and ``model.safetensors``; deterministic given
    family, sizes, corpus and seed.
    """
    import torch

    cfg = validate_scratch(spec_scratch)
    family = cfg["family"]
    lines = [str(line) for line in corpus if str(line).strip()]
    if not lines:
        raise ConfigError("the corpus to train a scratch tokenizer on is empty", "scratch")
    with atomic_path(out_dir, is_dir=True) as tmp:
        if family == "bert":
            tokenizer = _bert_tokenizer(lines, cfg["vocab_size"])
        elif family == "gpt2":
            tokenizer = _gpt2_tokenizer(lines, cfg["vocab_size"])
        elif family == "llama":
            tokenizer = _llama_tokenizer(lines, cfg["vocab_size"])
        elif family == "t5":
            tokenizer = _t5_tokenizer(lines, cfg["vocab_size"])
        else:
            tokenizer = _biogpt_tokenizer(lines, cfg["vocab_size"], tmp)
        tokenizer.model_max_length = cfg["max_position"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed("scratch", seed))
            model = _model(family, cfg, tokenizer)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
