"""Batch order of the dumps (bioprobe.analysis.extract)."""

from bioprobe.analysis.extract import _batches


def test_dump_batches_run_longest_first_with_the_attention_set_apart():
    lengths = [5, 9, 2, 7, 7, 1, 8, 3, 6]
    batches = _batches(lengths, batch_size=2, first=3)
    # the attention set (examples 0-2) first, then the rest; each longest first
    assert batches == [[1, 0], [2], [6, 3], [4, 8], [7, 5]]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every example exactly once
    rest = [lengths[i] for i in flat[3:]]
    assert rest == sorted(rest, reverse=True)
