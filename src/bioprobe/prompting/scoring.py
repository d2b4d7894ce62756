"""The prompting engine: log-likelihoods of answer options given a prompt, and greedy generation.

Rank classification scores every option of an example. Scoring prompt + option from scratch for
each option (`naive_option_logprobs`, the reference) recomputes the prompt once per option; a
few-shot prompt is long and an option is a few tokens, so `option_logprobs` computes each prompt
once and reuses its key/value cache for all its options (decoders), or runs the encoder and the
decoder's start token once per prompt and reuses their cross-attention cache (encoder–decoders).
A decoder's prompts of one run share their instruction and demonstrations: that common token
prefix runs once for all of them, and each prompt runs only its own tail on a copy of its cache.
Both take token ids: the templates and tokenization are the caller's. `generate` is batched
greedy decoding for the tasks that answer in free text, with the same shared prefix.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import torch

from bioprobe.progress import Progress

log = logging.getLogger("bioprobe.prompting")

#: A common prompt prefix shorter than this runs with each prompt: too short to repay a pass of
#: its own and the copy of its cache each batch starts from.
MIN_SHARED_PREFIX = 8


@dataclass(frozen=True)
class Choice:
    """One example: the prompt's token ids (special tokens and BOS already included by the
    caller) and each answer option's continuation ids (non-empty; the count may differ)."""

    prompt: list[int]
    options: list[list[int]]

    def __post_init__(self):
        if not self.prompt:
            raise ValueError("a Choice's prompt has no tokens: the first option token needs one")
        if not self.options or any(not option for option in self.options):
            raise ValueError("a Choice needs at least one option, each of at least one token")


def option_logprobs(
    model,
    choices: Sequence[Choice],
    *,
    batch_size: int,
    pad_id: int | None,
    progress_what: str = "scoring",
    max_tokens: int | None = None,
) -> list[list[float]]:
    """Per example, per option: the sum of log p(option token | prompt, earlier option tokens).

    Examples go longest prompt first in batches of at most `batch_size` examples and, with
    `max_tokens`, at most that many padded tokens (rows x (longest prompt + longest option),
    a row per (example, option)); a single example larger than `max_tokens` runs alone. Results
    come back in input order. The model must be in eval mode; log-softmax is taken in float32.
    `pad_id` only fills padding, which no real token attends to (None, as GPT-2's tokenizer
    has: 0). A decoder runs the prompts' longest common token prefix once (`_Prefix`).
    """
    _check_eval(model)
    pad_id = 0 if pad_id is None else pad_id
    keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters
    out: list[list[float]] = [[] for _ in choices]
    progress = Progress(len(choices), progress_what, log, unit="examples")

    def cost(batch: list[int]) -> int:
        rows = sum(len(choices[i].options) for i in batch)
        width = max(len(choices[i].prompt) for i in batch)
        return rows * (width + max(len(o) for i in batch for o in choices[i].options))

    order = sorted(range(len(choices)), key=lambda i: -len(choices[i].prompt))
    enc_dec = model.config.is_encoder_decoder
    with torch.inference_mode():
        # an encoder is bidirectional: a prefix's states depend on what follows it
        prefix = None if enc_dec else _Prefix.run(model, [c.prompt for c in choices])
        for batch in _batches(order, batch_size, max_tokens, cost):
            group = [choices[i] for i in batch]
            if enc_dec:
                scores = _seq2seq_batch(model, group, pad_id)
            else:
                scores = _decoder_batch(model, group, pad_id, keep_last, prefix)
            for i, row in zip(batch, scores, strict=True):
                out[i] = row
            progress.advance(len(batch))
    return out


def naive_option_logprobs(model, choices: Sequence[Choice]) -> list[list[float]]:
    """The reference: one forward pass per (example, option) on prompt + option, no cache, no
    batching, no padding."""
    _check_eval(model)
    device = model.device
    out = []
    with torch.inference_mode():
        for choice in choices:
            row = []
            for option in choice.options:
                if model.config.is_encoder_decoder:
                    decoder_in = [_decoder_start(model), *option[:-1]]
                    logits = model(
                        input_ids=torch.tensor([choice.prompt], device=device),
                        decoder_input_ids=torch.tensor([decoder_in], device=device),
                    ).logits[0]
                else:
                    ids = torch.tensor([choice.prompt + option], device=device)
                    logits = model(input_ids=ids).logits[0, len(choice.prompt) - 1 : -1]
                lp = logits.float().log_softmax(-1)
                row.append(lp[torch.arange(len(option)), torch.tensor(option)].sum().item())
            out.append(row)
    return out


def generate(
    model,
    prompts: Sequence[list[int]],
    *,
    batch_size: int,
    pad_id: int | None,
    eos_id: int | None,
    max_new_tokens: int,
    stop_ids: Collection[int] = (),
    progress_what: str = "generating",
    max_tokens: int | None = None,
) -> list[list[int]]:
    """Greedy continuation token ids per prompt, in input order: new tokens only, cut before
    the first `eos_id` or stop id (e.g. a newline's id), at most `max_new_tokens`.

    Batched longest prompt first, decoders left-padded (transformers derives the positions
    from the attention mask); the same tokens as one `model.generate` per prompt. A decoder's
    prompts' longest common prefix runs once (`_Prefix`): each batch starts from a copy of its
    cache, its prompts' tails left-padded after it. `eos_id` None: the model's generation
    config's end ids. With `max_tokens`, a batch holds at most that many tokens (prompts x
    (longest prompt + max_new_tokens)). `pad_id` None: 0 pads the prompts and an end id the
    finished rows.
    """
    _check_eval(model)
    if eos_id is None:
        default = model.generation_config.eos_token_id
        ends = set(default if isinstance(default, list) else [] if default is None else [default])
    else:
        ends = {eos_id}
    ends |= set(stop_ids)
    done_id = pad_id if pad_id is not None else min(ends, default=0)  # what follows an end
    pad_id = 0 if pad_id is None else pad_id
    enc_dec = model.config.is_encoder_decoder
    device = model.device
    out: list[list[int]] = [[] for _ in prompts]
    progress = Progress(len(prompts), progress_what, log, unit="examples")

    def cost(batch: list[int]) -> int:
        return len(batch) * (max(len(prompts[i]) for i in batch) + max_new_tokens)

    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    with torch.inference_mode():
        # generate refuses a cache of ours where the checkpoint names its own cache class
        own_cache = model.generation_config.cache_implementation is not None
        prefix = None if enc_dec or own_cache else _Prefix.run(model, prompts)
        shared = prefix.length if prefix is not None else 0
        for batch in _batches(order, batch_size, max_tokens, cost):
            ids, mask = _pad([prompts[i][shared:] for i in batch], pad_id, left=not enc_dec)
            extra = {}
            if prefix is not None:
                # [prefix][pads][tail]: the pads masked, positions counted over the mask
                head = torch.tensor([prompts[batch[0]][:shared]]).expand(len(batch), -1)
                ids = torch.cat([head, ids], dim=1)
                mask = torch.cat([torch.ones_like(head), mask], dim=1)
                extra["past_key_values"] = prefix.expanded(len(batch))
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                do_sample=False,
                num_beams=1,
                # plain greedy, whatever the checkpoint's generation config asks for
                repetition_penalty=1.0,
                no_repeat_ngram_size=0,
                max_new_tokens=max_new_tokens,
                # stopping at a stop id too ends a batch as soon as every row has ended
                eos_token_id=sorted(ends) or None,
                pad_token_id=done_id,
                **extra,
            )
            # a decoder returns prompt + new tokens; an encoder-decoder the decoder start + new
            new = generated[:, ids.shape[1] :] if not enc_dec else generated[:, 1:]
            for i, row in zip(batch, new.tolist(), strict=True):
                cut = next((k for k, token in enumerate(row) if token in ends), len(row))
                out[i] = row[:cut]
            progress.advance(len(batch))
    return out


def shared_prefix_length(prompts: Sequence[list[int]]) -> int:
    """How many leading tokens a decoder runs once for all `prompts`: their longest common
    prefix, leaving every prompt its last token (an option's first token is read there, and
    generation starts there); 0 where that is shorter than MIN_SHARED_PREFIX."""
    if not prompts:
        return 0
    # the lexicographic least and greatest prompts share exactly what all of them share
    low, high = min(prompts), max(prompts)
    pairs = enumerate(zip(low, high, strict=False))  # where none differ, low is the shorter
    length = next((k for k, (a, b) in pairs if a != b), len(low))
    length = min(length, min(len(p) for p in prompts) - 1)
    return length if length >= MIN_SHARED_PREFIX else 0


# ------------------------------------------------------------------------------------ internals


def _check_eval(model) -> None:
    if model.training:
        raise ValueError("scoring needs the model in eval mode (model.eval()): dropout is on")


def _decoder_start(model) -> int:
    start = model.generation_config.decoder_start_token_id
    if start is None:
        start = model.config.decoder_start_token_id
    if start is None:
        raise ValueError("the encoder-decoder's config sets no decoder_start_token_id")
    return start


def _batches(
    order: list[int], batch_size: int, max_tokens: int | None, cost: Callable[[list[int]], int]
) -> Iterator[list[int]]:
    """Consecutive runs of `order`: at most `batch_size` each and, with `max_tokens`, at most
    that cost (an example costlier on its own still forms a batch)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch: list[int] = []
    for i in order:
        grown = [*batch, i]
        if batch and (len(grown) > batch_size or (max_tokens and cost(grown) > max_tokens)):
            yield batch
            batch = [i]
        else:
            batch = grown
    if batch:
        yield batch


def _pad(seqs: Sequence[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, seq in enumerate(seqs):
        where = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[r, where] = torch.tensor(seq, dtype=torch.long)
        mask[r, where] = 1
    return ids, mask


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) under `logits` [..., V], in float32 whatever the model's dtype."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - logits.logsumexp(-1)


def _per_example(choices: list[Choice], sums: torch.Tensor) -> list[list[float]]:
    flat, out = sums.tolist(), []
    for choice in choices:
        out.append(flat[: len(choice.options)])
        flat = flat[len(choice.options) :]
    return out


def _options_on_cache(
    choices: list[Choice],
    first_logits: torch.Tensor,
    cache,
    pad_id: int,
    rest_pass: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> list[list[float]]:
    """Sum each option's token log-probs: the first token from its example's `first_logits`
    [examples, V], the others from one pass over all options at once on `cache` (the prompts'
    keys and values, copied to one row per option): `rest_pass(owner, ids, mask)` feeds the
    right-padded option[:-1] and returns their logits, token k read at input k - 1."""
    device = first_logits.device
    owner = torch.tensor([r for r, c in enumerate(choices) for _ in c.options], device=device)
    options = [o for c in choices for o in c.options]
    first = torch.tensor([o[0] for o in options], device=device)
    sums = _token_logprobs(first_logits[owner], first)
    if max(len(o) for o in options) > 1:  # one-token options need no second pass
        cache.batch_select_indices(owner)
        rest, rest_mask = (t.to(device) for t in _pad([o[:-1] for o in options], pad_id, False))
        logits = rest_pass(owner, rest, rest_mask)
        targets, _ = _pad([o[1:] or [pad_id] for o in options], pad_id, False)
        sums = sums + (_token_logprobs(logits, targets.to(device)) * rest_mask).sum(1)
    return _per_example(choices, sums)


@dataclass(frozen=True)
class _Prefix:
    """The key/value cache (batch 1) of the first `length` tokens of every prompt."""

    length: int
    cache: object

    @classmethod
    def run(cls, model, prompts: Sequence[list[int]]) -> _Prefix | None:
        """`shared_prefix_length(prompts)` tokens, run once; None where it is 0."""
        length = shared_prefix_length(prompts)
        if not length:
            return None
        ids = torch.tensor([prompts[0][:length]], device=model.device)
        extra = {}
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            extra["logits_to_keep"] = 1  # its logits go unread
        out = model(input_ids=ids, use_cache=True, **extra)
        return cls(length, out.past_key_values)

    def expanded(self, rows: int):
        """A copy of the cache for `rows` rows: a batch's passes grow their cache, never this
        one."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(rows)
        return cache


def _decoder_batch(
    model, choices: list[Choice], pad_id: int, keep_last: bool, prefix: _Prefix | None
) -> list[list[float]]:
    """The prompts once (after the shared `prefix`, on a copy of its cache), with their
    key/value cache; then every option of the batch at once.

    The prompts' tails after the prefix are right-padded and run without a padding mask (an
    all-ones mask): causal attention keeps a real token from seeing the pads after it, so each
    row computes what its prompt alone would, at its own positions, and SDPA keeps its causal
    kernel where no prefix sits in front (a padding mask cost more than the pads:
    bench/RESULTS.md, prompting). The option pass masks the pads, now between a prompt and its
    options; an option's first token is read at its prompt's last."""
    device = model.device
    shared = prefix.length if prefix is not None else 0
    ids, tail_mask = (
        t.to(device) for t in _pad([c.prompt[shared:] for c in choices], pad_id, left=False)
    )
    tail_lengths = tail_mask.sum(1)
    extra = {}
    if keep_last:  # the LM head only where an option's first token is read
        ends, where = torch.unique(tail_lengths - 1, return_inverse=True)
        extra["logits_to_keep"] = ends
    if prefix is not None:
        extra["past_key_values"] = prefix.expanded(len(choices))
    # whole prompts from here on: the shared prefix's columns in front of each tail
    mask = torch.cat([tail_mask.new_ones(len(choices), shared), tail_mask], dim=1)
    lengths = shared + tail_lengths
    positions = shared + torch.arange(ids.shape[1], device=device).unsqueeze(0)
    prompt = model(
        input_ids=ids,
        attention_mask=torch.ones_like(mask),
        position_ids=positions,
        use_cache=True,
        **extra,
    )
    if keep_last:
        first = prompt.logits[torch.arange(len(choices), device=device), where]
    else:
        first = prompt.logits[torch.arange(len(choices), device=device), tail_lengths - 1]

    def rest_pass(owner, rest, rest_mask):
        return model(
            input_ids=rest,
            attention_mask=torch.cat([mask[owner], rest_mask], dim=1),
            position_ids=lengths[owner].unsqueeze(1) + torch.arange(rest.shape[1], device=device),
            past_key_values=prompt.past_key_values,
            use_cache=True,
        ).logits

    return _options_on_cache(choices, first, prompt.past_key_values, pad_id, rest_pass)


def _seq2seq_batch(model, choices: list[Choice], pad_id: int) -> list[list[float]]:
    """The encoder once per prompt (right-padded, masked), then the decoder start token once per
    prompt, which fills the cache of its cross-attention keys and values; then every option of
    the batch at once on that cache (the encoder states are projected once per prompt, not once
    per option). The encoder is bidirectional: a shared prefix's states depend on what follows,
    so every prompt runs whole."""
    from transformers.modeling_outputs import BaseModelOutput

    device = model.device
    ids, mask = (t.to(device) for t in _pad([c.prompt for c in choices], pad_id, left=False))
    states = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    start = torch.full((len(choices), 1), _decoder_start(model), device=device)
    first = model(
        encoder_outputs=BaseModelOutput(last_hidden_state=states),
        attention_mask=mask,
        decoder_input_ids=start,
        use_cache=True,
    )

    def rest_pass(owner, rest, rest_mask):
        # right-padded options need no decoder mask: causal attention hides the later pads
        return model(
            encoder_outputs=BaseModelOutput(last_hidden_state=states[owner]),
            attention_mask=mask[owner],
            decoder_input_ids=rest,
            past_key_values=first.past_key_values,
            use_cache=True,
        ).logits

    return _options_on_cache(choices, first.logits[:, -1], first.past_key_values, pad_id, rest_pass)
