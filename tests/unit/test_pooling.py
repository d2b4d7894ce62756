"""Pooling of hidden states to sentence, pair and word vectors (all layers at once)."""

from __future__ import annotations

import pytest
import torch

from bioprobe.analysis.pooling import (
    first_token,
    last_token,
    masked_mean,
    pool_pair_joint,
    pool_pair_separate,
    resolve_joint_pooling,
    word_pool,
)

L1, H = 4, 6  # L+1 hidden states, hidden size


def _padded_batch(lengths, dtype, pad_value=1e3, seed=0):
    """[L+1, B, T, H] with garbage (large, finite) at padded positions, plus the mask."""
    gen = torch.Generator().manual_seed(seed)
    t_max = max(lengths)
    hidden = torch.randn(L1, len(lengths), t_max, H, generator=gen, dtype=dtype)
    mask = torch.zeros(len(lengths), t_max, dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        hidden[:, b, n:] = pad_value
    return hidden, mask


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_masked_mean_ignores_padding(dtype, tol):
    lengths = [3, 7, 1, 5]
    hidden, mask = _padded_batch(lengths, dtype)
    pooled = masked_mean(hidden, mask)
    assert pooled.shape == (L1, len(lengths), H)
    for b, n in enumerate(lengths):
        alone = masked_mean(hidden[:, b : b + 1, :n], mask[b : b + 1, :n])[:, 0]
        torch.testing.assert_close(pooled[:, b], alone, atol=tol, rtol=0)
        torch.testing.assert_close(pooled[:, b], hidden[:, b, :n].mean(dim=1), atol=tol, rtol=0)


def test_masked_mean_single_layer_and_tuple_input():
    hidden, mask = _padded_batch([2, 4], torch.float64)
    stacked = masked_mean(hidden, mask)
    torch.testing.assert_close(masked_mean(hidden[2], mask), stacked[2])
    torch.testing.assert_close(masked_mean(tuple(hidden), mask), stacked)


def test_masked_mean_rejects_empty_example_and_bad_mask():
    hidden, mask = _padded_batch([2, 4], torch.float64)
    mask[0] = 0
    with pytest.raises(ValueError, match="no real token"):
        masked_mean(hidden, mask)
    with pytest.raises(ValueError, match="does not match"):
        masked_mean(hidden, mask[:, :2])


def test_first_and_last_token():
    hidden, mask = _padded_batch([3, 5, 1], torch.float64)
    torch.testing.assert_close(first_token(hidden), hidden[:, :, 0])
    last = last_token(hidden, mask)
    assert last.shape == (L1, 3, H)
    for b, n in enumerate([3, 5, 1]):
        torch.testing.assert_close(last[:, b], hidden[:, b, n - 1])


def test_last_token_left_padding():
    hidden, _ = _padded_batch([4, 4], torch.float64)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    torch.testing.assert_close(last_token(hidden, mask), hidden[:, :, 3])


# word_index of one example: [CLS] w0 w0 w1 w2 w2 w2 [SEP]
WORD_INDEX = [-1, 0, 0, 1, 2, 2, 2, -1]


def _word_hidden():
    # token t, layer l, feature h: value 100*l + 10*t + h, easy to compute by hand
    t = torch.arange(len(WORD_INDEX), dtype=torch.float64)
    layers = torch.arange(3, dtype=torch.float64)
    feats = torch.arange(2, dtype=torch.float64)
    grid = 100 * layers[:, None, None] + 10 * t[None, :, None] + feats[None, None, :]
    return grid.unsqueeze(1)  # [3, 1, 8, 2]


@pytest.mark.parametrize(
    ("mode", "tokens"),
    [
        ("first", [1, 3, 4]),
        ("last", [2, 3, 6]),
        ("mean", [1.5, 3.0, 5.0]),  # (1+2)/2, 3, (4+5+6)/3
    ],
)
def test_word_pool_hand_made(mode, tokens):
    hidden = _word_hidden()
    out = word_pool(hidden, torch.tensor([WORD_INDEX]), mode=mode)
    assert out.offsets.tolist() == [0, 3]
    t = torch.tensor(tokens, dtype=torch.float64)
    for layer in range(3):
        expected = torch.stack([100 * layer + 10 * t, 100 * layer + 10 * t + 1], dim=-1)
        torch.testing.assert_close(out.vectors[layer], expected)


@pytest.mark.parametrize("mode", ["first", "mean", "last"])
def test_word_pool_batch_equals_each_example_alone(mode):
    gen = torch.Generator().manual_seed(1)
    rows = [
        [-1, 0, 1, 1, 2, -1, -1, -1, -1],
        [-1, 0, 0, 0, 1, 2, 3, 3, -1],
        [-1, 0, -1, -1, -1, -1, -1, -1, -1],
    ]
    word_index = torch.tensor(rows)
    hidden = torch.randn(L1, 3, 9, H, generator=gen, dtype=torch.float64)
    packed = word_pool(hidden, word_index, mode=mode)
    assert packed.offsets.tolist() == [0, 3, 7, 8]
    assert packed.vectors.shape == (L1, 8, H)
    bounds = packed.offsets.tolist()
    for b, alone in enumerate(rows):
        in_batch = packed.vectors[..., bounds[b] : bounds[b + 1], :]
        n = max(i for i, w in enumerate(alone) if w >= 0) + 2
        single = word_pool(hidden[:, b : b + 1, :n], word_index[b : b + 1, :n], mode=mode)
        torch.testing.assert_close(in_batch, single.vectors)


def test_word_pool_float16_mean_and_explicit_n_words():
    hidden = _word_hidden().to(torch.float16)
    out = word_pool(hidden, torch.tensor([WORD_INDEX]), n_words=[3], mode="mean")
    assert out.vectors.dtype == torch.float16
    assert out.vectors[0, :, 0].tolist() == [15.0, 30.0, 50.0]


def test_word_pool_errors():
    hidden = _word_hidden()
    with pytest.raises(ValueError, match="no sub-token"):
        word_pool(hidden, torch.tensor([WORD_INDEX]), n_words=4)
    with pytest.raises(ValueError, match=">= n_words"):
        word_pool(hidden, torch.tensor([WORD_INDEX]), n_words=2)
    with pytest.raises(ValueError, match="mode"):
        word_pool(hidden, torch.tensor([WORD_INDEX]), mode="max")
    with pytest.raises(ValueError, match="does not match"):
        word_pool(hidden, torch.tensor([WORD_INDEX[:-1]]))


def test_resolve_joint_pooling():
    assert resolve_joint_pooling("auto", is_decoder=False) == "cls"
    assert resolve_joint_pooling("auto", is_decoder=True) == "last"
    assert resolve_joint_pooling("mean", is_decoder=True) == "mean"
    with pytest.raises(ValueError):
        resolve_joint_pooling("max", is_decoder=False)


def test_pool_pair_joint_modes():
    hidden, mask = _padded_batch([3, 5], torch.float64)
    torch.testing.assert_close(pool_pair_joint(hidden, mask, "auto"), first_token(hidden))
    torch.testing.assert_close(
        pool_pair_joint(hidden, mask, "auto", is_decoder=True), last_token(hidden, mask)
    )
    torch.testing.assert_close(pool_pair_joint(hidden, mask, "mean"), masked_mean(hidden, mask))


def test_pool_pair_separate_concatenates_masked_means():
    ha, ma = _padded_batch([3, 5], torch.float64, seed=1)
    hb, mb = _padded_batch([2, 7], torch.float64, seed=2)
    out = pool_pair_separate(ha, ma, hb, mb)
    assert out.shape == (L1, 2, 2 * H)
    torch.testing.assert_close(out[..., :H], masked_mean(ha, ma))
    torch.testing.assert_close(out[..., H:], masked_mean(hb, mb))
