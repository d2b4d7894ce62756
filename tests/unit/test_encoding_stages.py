"""One encoding for every stage: fine-tuning, scoring and the dumps feed the model the same inputs.

For each example the tokens the model sees (input ids, attention mask, token types) are read
where they enter the model: the Trainer's training batches, the forward calls of scoring
(`evaluate.predict`) and of a dump (`extract.extract`), caught by a forward pre-hook. Encoders
with token types (BERT, MiniLM) get them in every stage, the second segment of a pair as 1;
decoders (GPT-2, BioGPT) in none.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from bioprobe.analysis.extract import extract
from bioprobe.models import load_model_for_task, load_tokenizer_for, resolve_model
from bioprobe.settings import DumpSettings, TrainingSettings
from bioprobe.training.evaluate import predict
from bioprobe.training.features import build_features, make_collator

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
LABELS = {"ner": ["O", "B-X", "I-X"], "pair": ["no", "yes"]}
MAX_LENGTH = 12  # some pairs and sentences are truncated


@pytest.fixture(scope="module")
def model_dirs(tiny_bert_dir, tiny_gpt2_dir, tiny_biogpt_dir, minilm_dir):
    return {
        "bert": tiny_bert_dir,
        "minilm": minilm_dir,
        "gpt2": tiny_gpt2_dir,
        "biogpt": tiny_biogpt_dir,  # a slow tokenizer, `</s>` as sep
    }


def _records(task_type: str, corpus: list[str]) -> list[dict]:
    out = []
    for i, sentence in enumerate(dict.fromkeys(corpus)):  # distinct sentences
        words = sentence.split()[: 4 + i % 9]
        if task_type == "ner":
            tags = ["B-X" if w[0].isupper() else "O" for w in words]
            out.append({"id": f"s{i}", "tokens": words, "tags": tags})
        else:
            half = len(words) // 2
            text_a, text_b = " ".join(words[:half]), " ".join(words[half:])
            label = "yes" if i % 2 else "no"
            out.append({"id": f"p{i}", "text_a": text_a, "text_b": text_b, "label": label})
    return out


def _rows(batch: dict) -> Counter:
    """The batch's examples as (input ids, token types or None), padding stripped; checks that
    the padding is on the right and that padded positions have type 0."""
    out = Counter()
    mask = batch["attention_mask"]
    for row in range(mask.shape[0]):
        n = int(mask[row].sum())
        assert mask[row, :n].eq(1).all() and mask[row, n:].eq(0).all()
        ids = tuple(batch["input_ids"][row, :n].tolist())
        types = None
        if "token_type_ids" in batch:
            types = tuple(batch["token_type_ids"][row, :n].tolist())
            assert batch["token_type_ids"][row, n:].eq(0).all()
        out[ids, types] += 1
    return out


class _Inputs:
    """A forward pre-hook collecting the model inputs of every call."""

    def __init__(self, model):
        self.batches: list[dict] = []
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        assert not args, "inputs are passed by keyword"
        self.batches.append({k: kwargs[k].cpu() for k in INPUTS if kwargs.get(k) is not None})

    def keys(self) -> set[frozenset]:
        return {frozenset(b) for b in self.batches}

    def rows(self) -> Counter:
        return sum((_rows(b) for b in self.batches), Counter())


def _training_batches(model, tokenizer, task_type, features, tmp_path) -> list[dict]:
    """The batches the Trainer feeds the model (its column filtering included)."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(features),
        data_collator=make_collator(task_type, tokenizer),
        processing_class=tokenizer,
    )
    return [{k: b[k] for k in INPUTS if k in b} for b in trainer.get_train_dataloader()]


@pytest.mark.parametrize("task_type", ["pair", "ner"])
@pytest.mark.parametrize("family", ["bert", "minilm", "gpt2", "biogpt"])
def test_training_scoring_and_dumps_feed_the_model_the_same_inputs(
    task_type, family, model_dirs, bio_corpus, tmp_path, one_torch_thread
):
    spec = resolve_model(family, {"source": str(model_dirs[family])})
    tokenizer = load_tokenizer_for(spec)
    model = load_model_for_task(
        None,
        task_type,
        LABELS[task_type],
        spec=spec,
        attn_implementation="eager",
        tokenizer=tokenizer,
        seed=0,
    )
    records = _records(task_type, bio_corpus)
    training = TrainingSettings(max_length=MAX_LENGTH, pair_truncation="longest_first")

    fs = build_features(task_type, records, tokenizer, LABELS[task_type], training)
    assert 0 < fs.truncated_examples < len(records)  # truncation alike in every stage too
    train = _training_batches(model, tokenizer, task_type, fs.features, tmp_path)
    train_rows = sum((_rows(b) for b in train), Counter())
    assert sum(train_rows.values()) == len(records)
    assert len(train_rows) == len(records)  # distinct examples: a row identifies its example

    scoring = _Inputs(model)
    predict(model, tokenizer, task_type, fs, batch_size=5)
    scoring.handle.remove()

    dumping = _Inputs(model)
    settings = DumpSettings(
        batch_size=3,
        attention_max_examples=4,
        dtype="float32",
        max_length=MAX_LENGTH,
        pair_truncation="longest_first",
        pair_modes=("joint",),
        splits=("test",),
    )
    extract(
        model=model,
        tokenizer=tokenizer,
        task_type=task_type,
        splits={"test": records},
        settings=settings,
        out_dir=tmp_path / "dump",
        provenance={"is_decoder": bool(spec.is_decoder)},
    )
    dumping.handle.remove()

    # the dump's forward gets token types iff the training batches had them
    train_keys = {frozenset(b) for b in train}
    assert len(train_keys) == 1
    assert scoring.keys() == train_keys
    assert dumping.keys() == train_keys
    # ... and has them where the model was pretrained with them
    has_types = "token_type_ids" in next(iter(train_keys))
    assert has_types == (not spec.is_decoder)
    assert has_types == (getattr(model.config, "type_vocab_size", 0) >= 2)
    if has_types and task_type == "pair":  # the second segment is segment 1
        assert all(1 in types for _, types in train_rows)

    # every example: the same tokens and token types in all three stages
    assert scoring.rows() == train_rows
    assert dumping.rows() == train_rows


@pytest.mark.parametrize("task_type", ["pair", "ner"])
@pytest.mark.parametrize("method_id", ["prompt-tuning", "p-tuning"])
def test_prompt_methods_train_and_dump_with_token_types(
    method_id, task_type, tiny_bert_dir, bio_corpus, tmp_path, one_torch_thread
):
    """peft prepends segment 0 for the virtual tokens: training batches and dumps of a prompt
    method on an encoder carry the real tokens' types through."""
    from bioprobe.config import validate_config
    from bioprobe.methods import load_for_training, training_collator

    from .test_config import minimal

    method = validate_config(minimal(methods={method_id: {"num_virtual_tokens": 3}}))["methods"][
        method_id
    ]
    spec = resolve_model("bert", {"source": str(tiny_bert_dir)})
    tokenizer = load_tokenizer_for(spec)
    model = load_for_training(
        str(tiny_bert_dir),
        task_type,
        LABELS[task_type],
        spec=spec,
        method=method,
        max_length=MAX_LENGTH,
    )
    records = _records(task_type, bio_corpus)[:6]
    training = TrainingSettings(max_length=MAX_LENGTH)
    fs = build_features(task_type, records, tokenizer, LABELS[task_type], training)
    collate = training_collator(make_collator(task_type, tokenizer), method, task_type)
    batch = collate([{k: v for k, v in f.items() if k != "length"} for f in fs.features])
    assert "token_type_ids" in batch
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()

    dumping = _Inputs(model)
    settings = DumpSettings(
        batch_size=3,
        attention_max_examples=2,
        dtype="float32",
        max_length=MAX_LENGTH,
        splits=("test",),
        virtual_tokens=3,
    )
    meta = extract(
        model=model,
        tokenizer=tokenizer,
        task_type=task_type,
        splits={"test": records},
        settings=settings,
        out_dir=tmp_path / "dump",
        provenance={},
    )
    dumping.handle.remove()
    assert meta["splits"]["test"]["examples"] == len(records)
    assert dumping.batches
    assert all("token_type_ids" in b for b in dumping.batches)
