"""A prompting run: ask the model every validation and test example, score the answers as the
task type scores any run (`TaskType.prediction_rows`, `score_rows`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bioprobe.errors import ConfigError
from bioprobe.prompting.prompts import PromptFormat, Question, stratified_draw
from bioprobe.prompting.schemes import Scheme, scheme_for
from bioprobe.settings import PromptingSettings, TaskPromptSettings

log = logging.getLogger("bioprobe.prompting")

SPLITS = ("validation", "test")
NO_SIGNAL = (
    "the prompts do not tell the labels apart for this model (few-shot demonstrations, "
    "another instruction or verbaliser, or length_normalise may help)"
)


def prompt_format(
    task_type: Any, method: PromptingSettings, task_prompt: TaskPromptSettings, chat: bool
) -> PromptFormat:
    """The method's template for this task type (else the type's), the method's instruction
    (else the task's, else the type's)."""
    instruction = method.instruction
    if instruction is None:
        instruction = task_prompt.instruction
    if instruction is None:
        instruction = task_type.prompt_instruction
    template = method.templates.get(task_type.name, task_type.prompt_template)
    return PromptFormat(template=template, instruction=instruction, chat=chat)


def uses_chat_template(tokenizer: Any, setting: str, key: str) -> bool:
    """`chat_template`: auto = where the tokenizer has one; always refuses a tokenizer without."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if setting == "always" and not has:
        raise ConfigError(
            f"chat_template: always, but the tokenizer ({type(tokenizer).__name__}) has no chat "
            "template; use auto or never",
            f"{key}.chat_template",
        )
    return has and setting != "never"


def check_verbalizer(verbalizer: dict, labels: Sequence[str], task_type: Any, key: str) -> None:
    """A verbalised label the task does not have would silently change nothing; two labels
    with one answer could never be told apart."""
    from bioprobe.tasks.ner import entity_types

    known = entity_types(labels) if task_type.prompt_scheme == "mentions" else list(labels)
    for label in verbalizer:
        if label not in known:
            raise ConfigError(
                f"{label!r} is not a {'entity type' if task_type.token_labels else 'label'} of "
                f"the task ({', '.join(known)})",
                f"{key}.{label}",
            )
    words = [verbalizer.get(label, label) for label in known]
    if task_type.prompt_scheme == "choice" and len(set(words)) < len(words):
        raise ConfigError(f"two labels share one answer ({', '.join(words)})", key)


class Encoder:
    """Prompt texts to token ids as the model reads them: a decoder's prompt and each answer
    as its continuation, an encoder-decoder's prompt for the encoder and answers for the
    decoder."""

    def __init__(self, tokenizer: Any, model_config: Any, fmt: PromptFormat):
        self.tokenizer, self.fmt = tokenizer, fmt
        self.seq2seq = bool(getattr(model_config, "is_encoder_decoder", False))

    def _text(self, text: str) -> str:
        if not self.fmt.chat:
            return text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )

    def _ids(self, text: str) -> list[int]:
        # a chat template writes its own special tokens
        ids = self.tokenizer(text, add_special_tokens=not self.fmt.chat)["input_ids"]
        eos = self.tokenizer.eos_token_id
        if not self.seq2seq and len(ids) > 1 and ids[-1] == eos:
            ids = ids[:-1]  # a decoder continues the prompt: no end-of-text before the answer
        return ids

    def prompt(self, text: str) -> list[int]:
        return self._ids(self._text(text))

    def option(self, prompt_text: str, prompt_ids: list[int], answer: str) -> list[int]:
        """An answer's token ids after the prompt. A decoder's are read off the prompt and
        answer encoded together (a tokenizer may merge across the boundary differently when
        they are encoded apart), falling back to the answer alone where the prompt's tokens
        change; an encoder-decoder's decoder reads the answer alone."""
        if self.seq2seq:
            return self.tokenizer(answer, add_special_tokens=False)["input_ids"]
        spaced = f"{self.fmt.answer_separator}{answer}"
        whole = self._ids(self._text(prompt_text) + spaced)
        if whole[: len(prompt_ids)] == prompt_ids and len(whole) > len(prompt_ids):
            return whole[len(prompt_ids) :]
        return self.tokenizer(spaced, add_special_tokens=False)["input_ids"]


@dataclass
class Prompted:
    """A split's questions as token ids: per question its record, its prompt and options."""

    owners: list[int]
    prompts: list[list[int]]
    options: list[list[list[int]]]
    shortened: int = 0
    cut: int = 0


def build_prompts(
    records: Sequence[dict],
    scheme: Scheme,
    demos: Sequence[dict],
    fmt: PromptFormat,
    encoder: Encoder,
    limit: int | None,
    answer_room: int,
) -> Prompted:
    """Every question of `records` as token ids. Where a prompt and its longest answer
    (`answer_room` tokens for a generated one) outgrow the model's positions (`limit`), the
    last demonstrations are dropped (`shortened`) and, without any, the prompt's start is cut
    (`cut`)."""
    out = Prompted([], [], [])
    demo_questions = [scheme.questions(d) for d in demos]
    for index, record in enumerate(records):
        for j, question in enumerate(scheme.questions(record)):
            shots = [qs[j] for qs in demo_questions]
            ids, options = _fitted(question, shots, fmt, encoder, limit, answer_room, out)
            out.owners.append(index)
            out.prompts.append(ids)
            out.options.append(options)
    return out


def _fitted(
    question: Question,
    shots: list[Question],
    fmt: PromptFormat,
    encoder: Encoder,
    limit: int | None,
    answer_room: int,
    out: Prompted,
) -> tuple[list[int], list[list[int]]]:
    n = len(shots)
    while True:
        text = fmt.text(question, shots[:n])
        ids = encoder.prompt(text)
        options = [encoder.option(text, ids, answer) for answer in question.options]
        room = max((len(o) for o in options), default=answer_room)
        if limit is None or len(ids) + room <= limit:
            break
        if n == 0:
            ids = ids[len(ids) + room - limit :]
            out.cut += 1
            break
        n -= 1
    out.shortened += n < len(shots)
    return ids, options


def evaluate_prompting(
    job: Any,
    method: PromptingSettings,
    task_prompt: TaskPromptSettings,
    *,
    method_key: str,
    task_key: str,
    splits: Sequence[str] = SPLITS,
) -> dict:
    """Scores of a prompting run on `splits`, what the prompts held (``prompting``: shots,
    demonstrations, chat template, per split the questions, prompts shortened or cut,
    unparsable generations, unmatched mentions) and the predictions file's rows."""
    from bioprobe import methods
    from bioprobe.models import (
        load_language_model,
        load_tokenizer_for,
        position_limit,
        read_model_config,
    )
    from bioprobe.predictions import predictions_record
    from bioprobe.seeding import seed_everything
    from bioprobe.training.evaluate import device, warn_single_prediction

    task = job.task()
    task_type = task.type
    check_verbalizer(
        dict(task_prompt.verbalizer), task.labels, task_type, f"{task_key}.prompt.verbalizer"
    )
    # planning checks what it can read then; a Hub model's config is known only once fetched
    config = read_model_config(job.spec, job.location) or {}
    methods.check_model_supported(
        {method_key.split(".", 1)[-1]: {"kind": method.kind}}, config, task.task_type, job.spec.key
    )
    seed_everything(job.seed)
    tokenizer = load_tokenizer_for(job.spec)
    # prompts are fitted to the model's positions here (`build_prompts`), not by the tokenizer,
    # which would warn about every few-shot prompt longer than its nominal maximum
    tokenizer.model_max_length = int(1e30)
    model = load_language_model(job.location, spec=job.spec, tokenizer=tokenizer, seed=job.seed)
    model.to(device())
    chat = uses_chat_template(tokenizer, method.chat_template, method_key)
    fmt = prompt_format(task_type, method, task_prompt, chat)
    scheme = scheme_for(task_type, task.labels, task_prompt.verbalizer)
    encoder = Encoder(tokenizer, model.config, fmt)
    demos = stratified_draw(
        task.split("train"), method.shots, task_type.stratum, job.seed, task.root.name
    )
    limit = None if model.config.is_encoder_decoder else position_limit(model.config)
    limit = limit[0] if limit else None
    log.info(
        "prompting %s (%s, %s) on %s: %d-shot, %s, %s",
        job.spec.key,
        model.config.model_type,
        job.location,
        task.root.name,
        len(demos),
        "chat template" if chat else "plain prompts",
        "generated answers"
        if scheme.generates
        else "rank classification" + (" (length-normalised)" if method.length_normalise else ""),
    )
    scores, stats, rows = {}, {}, {}
    for split in splits:
        records = task.split(split)
        prompted = build_prompts(records, scheme, demos, fmt, encoder, limit, method.max_new_tokens)
        answers = _answers(model, tokenizer, scheme, prompted, method, split)
        split_stats: dict[str, int] = {}
        per_record: list[list] = [[] for _ in records]
        for owner, answer in zip(prompted.owners, answers, strict=True):
            per_record[owner].append(answer)
        predicted = []
        for record, record_answers in zip(records, per_record, strict=True):
            prediction = scheme.prediction(record, record_answers)
            if scheme.generates:
                prediction, counts = prediction
                for name, value in counts.items():
                    split_stats[name] = split_stats.get(name, 0) + value
            predicted.append(prediction)
        rows[split] = task_type.prediction_rows(task.labels, records, predicted)
        if scheme.generates:
            for row, record_answers in zip(rows[split], per_record, strict=True):
                row["generated"] = dict(zip(scheme.entity_types, record_answers, strict=True))
        scores[split] = task_type.score_rows(task.labels, rows[split])
        warn_single_prediction(task, split, predicted, NO_SIGNAL)
        stats[split] = {
            "examples": len(records),
            "questions": len(prompted.prompts),
            "longest_prompt_tokens": max(map(len, prompted.prompts), default=0),
            "shortened_prompts": prompted.shortened,
            "cut_prompts": prompted.cut,
            **split_stats,
        }
        _log_split(split, stats[split], scores[split])
    return {
        "scores": scores,
        "prompting": {
            "shots": len(demos),
            "demonstrations": [d["id"] for d in demos],
            "chat_template": chat,
            "scoring": "generation" if scheme.generates else "rank classification",
            "splits": stats,
        },
        "predictions": predictions_record(task.task_type, task.labels, rows),
    }


def _answers(
    model: Any,
    tokenizer: Any,
    scheme: Scheme,
    prompted: Prompted,
    method: PromptingSettings,
    split: str,
) -> list:
    """Per question: the options' log-likelihoods (per token where length-normalised), or the
    generated text."""
    from bioprobe.prompting.scoring import Choice, generate, option_logprobs

    if scheme.generates:
        generated = generate(
            model,
            prompted.prompts,
            batch_size=method.batch_size,
            pad_id=tokenizer.pad_token_id,
            eos_id=tokenizer.eos_token_id,
            max_new_tokens=method.max_new_tokens,
            stop_ids=newline_ids(tokenizer),
            progress_what=f"{split}: generating",
        )
        return [tokenizer.decode(ids, skip_special_tokens=True) for ids in generated]
    choices = [Choice(p, o) for p, o in zip(prompted.prompts, prompted.options, strict=True)]
    sums = option_logprobs(
        model,
        choices,
        batch_size=method.batch_size,
        pad_id=tokenizer.pad_token_id,
        progress_what=f"{split}: scoring",
    )
    if not method.length_normalise:
        return sums
    return [
        [s / len(o) for s, o in zip(row, c.options, strict=True)]
        for row, c in zip(sums, choices, strict=True)
    ]


def newline_ids(tokenizer: Any) -> list[int]:
    """The tokens of a line break, where the generated answer ends (a tokenizer that maps
    "\\n" to a plain space, as T5's does, has none: its answers end at ``</s>``)."""
    ids = tokenizer("\n", add_special_tokens=False)["input_ids"]
    return [i for i in ids if "\n" in tokenizer.decode([i])]


def _log_split(split: str, stats: dict, scores: dict) -> None:
    log.info(
        "%s: %d questions on %d examples (longest prompt %d tokens): %s",
        split,
        stats["questions"],
        stats["examples"],
        stats["longest_prompt_tokens"],
        {k: round(v, 4) for k, v in scores.items()},
    )
    if stats["shortened_prompts"] or stats["cut_prompts"]:
        log.warning(
            "%s: %d prompts dropped demonstrations and %d lost their start to fit the model's "
            "positions",
            split,
            stats["shortened_prompts"],
            stats["cut_prompts"],
        )
    if stats.get("invalid_generations") or stats.get("unmatched_mentions"):
        log.warning(
            "%s: %d generated answers could not be read (counted as no mention) and %d "
            "mentions were found nowhere in their sentence (ignored)",
            split,
            stats.get("invalid_generations", 0),
            stats.get("unmatched_mentions", 0),
        )
