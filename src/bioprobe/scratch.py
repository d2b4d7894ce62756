"""Scratch models: tiny random-weight transformers with a tokenizer trained on the task corpus.

The demo cannot download BERT, GPT-2 or BioGPT, so it builds small models of the same families:
same architecture classes, same tokenizer classes (a BERT WordPiece ``BertTokenizer``, a GPT-2
byte-level BPE ``GPT2Tokenizer``, a slow Moses + fastBPE ``BioGptTokenizer``), random weights.

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

FAMILIES = ("bert", "gpt2", "biogpt")
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
    return dict(cfg)


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
# tokenizers of the three families


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
        else:
            tokenizer = _biogpt_tokenizer(lines, cfg["vocab_size"], tmp)
        tokenizer.model_max_length = cfg["max_position"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed("scratch", seed))
            model = _model(family, cfg, tokenizer)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
