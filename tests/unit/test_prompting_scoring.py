"""The prompting engine: cached, batched option scoring equals one forward pass per (example,
option); batched greedy generation equals `model.generate` one prompt at a time."""

from __future__ import annotations

import pytest
import torch
import transformers

from bioprobe.prompting.scoring import (
    MIN_SHARED_PREFIX,
    Choice,
    generate,
    naive_option_logprobs,
    option_logprobs,
    shared_prefix_length,
)

PAD = 0
FAMILIES = ["gpt2", "llama", "t5"]


def _load(family: str, directory):
    torch.manual_seed(0)  # any weight the checkpoint lacks is drawn the same on every run
    auto = (
        transformers.AutoModelForSeq2SeqLM if family == "t5" else transformers.AutoModelForCausalLM
    )
    model, info = auto.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"], info  # the scratch dirs hold their LM heads
    return model.eval()


@pytest.fixture
def model(request):
    family = request.param
    return _load(family, request.getfixturevalue(f"tiny_{family}_dir"))


def _choices(vocab: int) -> list[Choice]:
    """Prompts of 1-17 tokens (unsorted, so each batch mixes lengths and left padding
    matters), options of 1-3 tokens, 1-4 options per example."""
    gen = torch.Generator().manual_seed(0)

    def ids(n: int) -> list[int]:
        return torch.randint(3, vocab, (n,), generator=gen).tolist()

    shapes = [
        (5, [2, 1]),
        (17, [1, 3, 2, 1]),
        (1, [3]),
        (9, [1, 1, 2]),
        (12, [2, 3]),
        (3, [1, 2, 3, 1]),
        (7, [3, 3]),
    ]
    return [Choice(ids(n), [ids(k) for k in options]) for n, options in shapes]


def _max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    pairs = (xy for ra, rb in zip(a, b, strict=True) for xy in zip(ra, rb, strict=True))
    return max(abs(x - y) for x, y in pairs)


@pytest.mark.parametrize("model", FAMILIES, indirect=True)
@pytest.mark.parametrize(
    "batch_size, max_tokens, pad_id",
    # None: a tokenizer without a pad token (GPT-2's); 40 tokens split batches of 7
    [(1, None, PAD), (3, None, None), (7, 40, PAD)],
)
def test_option_logprobs_equal_the_naive_reference(
    model, batch_size, max_tokens, pad_id, one_torch_thread
):
    choices = _choices(model.config.vocab_size)
    reference = naive_option_logprobs(model, choices)
    scores = option_logprobs(
        model, choices, batch_size=batch_size, pad_id=pad_id, max_tokens=max_tokens
    )
    assert _max_diff(scores, reference) < 1e-4
    # log-probabilities of distinct continuations: negative and not all the same
    flat = [x for row in scores for x in row]
    assert max(flat) < 0 and len({round(x, 3) for x in flat}) > len(flat) // 2


def _shared_choices(vocab: int, kind: str) -> list[Choice]:
    """Prompts as a prompting run writes them: a 20-token start every prompt shares (the
    instruction and demonstrations), then a tail of its own. "tails": tails of 1-9 tokens;
    "nested": one prompt is the shared start alone and others extend one another, so the
    shared prefix must stop before that prompt's last token; "identical": every prompt the
    same."""
    gen = torch.Generator().manual_seed(1)

    def ids(n: int) -> list[int]:
        return torch.randint(3, vocab, (n,), generator=gen).tolist()

    shared, nested = ids(20), ids(6)
    tails = {
        "tails": [ids(n) for n in (5, 9, 1, 4, 7, 2, 3)],
        "nested": [[], nested[:1], nested[:3], nested, ids(2), nested[:1], nested[:5]],
        "identical": [[]] * 7,
    }[kind]
    options = [[2, 1], [1, 3, 2, 1], [3], [1, 1, 2], [2, 3], [1, 2, 3, 1], [3, 3]]
    return [
        Choice(shared + tail, [ids(k) for k in shape])
        for tail, shape in zip(tails, options, strict=True)
    ]


@pytest.mark.parametrize("model", FAMILIES, indirect=True)
@pytest.mark.parametrize("kind", ["tails", "nested", "identical"])
@pytest.mark.parametrize(
    "batch_size, max_tokens, pad_id",
    # 120 tokens: batches of 1-2 examples
    [(1, None, PAD), (3, None, None), (7, 120, PAD)],
)
def test_a_shared_prompt_prefix_scores_as_the_naive_reference(
    model, kind, batch_size, max_tokens, pad_id, one_torch_thread
):
    choices = _shared_choices(model.config.vocab_size, kind)
    reference = naive_option_logprobs(model, choices)
    scores = option_logprobs(
        model, choices, batch_size=batch_size, pad_id=pad_id, max_tokens=max_tokens
    )
    assert _max_diff(scores, reference) < 1e-4


@pytest.mark.parametrize("model", ["gpt2", "llama"], indirect=True)
@pytest.mark.parametrize("engine", ["option_logprobs", "generate"])
def test_a_shared_prompt_prefix_runs_once(model, engine, one_torch_thread):
    """A decoder sees the prompts' common start once, in its first call, not once per batch
    or per prompt: every later call is narrower than it (tails, then options or new tokens)."""
    choices = _shared_choices(model.config.vocab_size, "tails")
    shared = 20
    assert shared_prefix_length([c.prompt for c in choices]) == shared
    calls: list[list[list[int]]] = []
    hook = model.register_forward_pre_hook(
        lambda _, args, kwargs: calls.append(kwargs["input_ids"].tolist()), with_kwargs=True
    )
    try:
        if engine == "generate":
            prompts = [c.prompt for c in choices]
            generate(model, prompts, batch_size=3, pad_id=PAD, eos_id=None, max_new_tokens=3)
        else:
            option_logprobs(model, choices, batch_size=3, pad_id=PAD)
    finally:
        hook.remove()
    assert calls[0] == [choices[0].prompt[:shared]]
    assert all(len(rows[0]) < shared for rows in calls[1:])
    assert len(calls) > 3  # then at least the three batches' prompt passes


def test_shared_prefix_length():
    start = list(range(10, 30))
    assert shared_prefix_length([[*start, 1, 2], [*start, 3], [*start, 1]]) == 20
    # every prompt keeps its last token: a prompt that is the shared start alone, or all equal
    assert shared_prefix_length([start, [*start, 1, 2], [*start, 3]]) == 19
    assert shared_prefix_length([start] * 3) == 19
    assert shared_prefix_length([[*start[:1], 5, *start[1:]], start]) == 0  # 1 token in common
    n = MIN_SHARED_PREFIX
    assert shared_prefix_length([start[: n + 1], start]) == n
    assert shared_prefix_length([start[:n], start]) == 0  # n - 1 would be shared: too short
    assert shared_prefix_length([]) == 0


def test_scores_are_summed_token_logprobs(tiny_gpt2_dir, one_torch_thread):
    """The reference itself, against log-softmax read off one full forward pass by hand."""
    model = _load("gpt2", tiny_gpt2_dir)
    prompt, option = [5, 6, 7], [8, 9]
    logits = model(input_ids=torch.tensor([prompt + option])).logits[0].double()
    lp = logits.log_softmax(-1)
    expected = (lp[2, 8] + lp[3, 9]).item()
    (got,) = naive_option_logprobs(model, [Choice(prompt, [option])])
    assert got[0] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("model", FAMILIES, indirect=True)
@pytest.mark.parametrize("kind", ["random", "tails", "nested", "identical"])
def test_generate_equals_one_prompt_at_a_time(model, kind, one_torch_thread):
    vocab = model.config.vocab_size
    choices = _choices(vocab) if kind == "random" else _shared_choices(vocab, kind)
    prompts = [c.prompt for c in choices]
    steps, eos = 6, model.generation_config.eos_token_id
    singles = []
    for prompt in prompts:
        out = model.generate(
            torch.tensor([prompt]), do_sample=False, max_new_tokens=steps, pad_token_id=PAD
        )[0].tolist()
        singles.append(out[len(prompt) :] if not model.config.is_encoder_decoder else out[1:])
    # a stop id that cuts some continuation after its first token (the random scratch T5
    # repeats one token: there, one that cuts a continuation to nothing)
    later = [t for row in singles for k, t in enumerate(row) if k and t not in row[:k]]
    stop = later[0] if later else singles[1][0]

    def cut(row):
        ends = [k for k, t in enumerate(row) if t in (eos, stop)]
        return row[: ends[0]] if ends else row

    expected = [cut(row) for row in singles]
    assert expected != singles  # the stop id did cut something
    for batch_size in (1, 3):
        got = generate(
            model,
            prompts,
            batch_size=batch_size,
            pad_id=PAD,
            eos_id=eos,
            max_new_tokens=steps,
            stop_ids=[stop],
        )
        assert got == expected


def test_bad_input_says_what(tiny_gpt2_dir):
    with pytest.raises(ValueError, match="prompt has no tokens"):
        Choice([], [[1]])
    with pytest.raises(ValueError, match="at least one token"):
        Choice([1], [[2], []])
    model = _load("gpt2", tiny_gpt2_dir).train()
    with pytest.raises(ValueError, match="eval mode"):
        option_logprobs(model, [Choice([1], [[2]])], batch_size=1, pad_id=PAD)
