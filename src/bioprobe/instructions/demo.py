"""A deterministic, biomedical-looking demo instruction set written by the project (no download).

Three kinds of instruction, in equal numbers and shuffled (:data:`INSTRUCTIONS` lists each
kind's instruction texts):

- question answering: a question on a short passage (the answer is a span of it), or on a
  drug's use with no input;
- information extraction: the diseases, or the chemicals, a sentence of the demo NER corpus
  mentions (read off its tags, so the answer is right by construction), or both as pairs;
- generation: a one-sentence summary of a case report or a trial, or a plain-language
  explanation of a disease with no input.

The vocabularies are the demo corpora's (:mod:`bioprobe.data.demo`), but only their shared and
training-only entities: the demo tasks' validation- and test-only mentions stay unseen, so
prompting an instruction-tuned model on those splits tells nothing it was taught.

Written as one JSON array of ``{"instruction", "input", "output"}`` objects, the layout of the
Hub's ``bio-nlp-umass/bioinstruct`` (read with ``format: json``). Pure Python
``random.Random`` with a string seed: the bytes are identical across runs, platforms and hash
seeds. CLI: ``python -m bioprobe.instructions.demo OUT_DIR [--n N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from bioprobe.data.demo import (
    CHEMICALS,
    DISEASES,
    FILLERS,
    lexicon,
    ner_sentence,
    shuffled_labels,
    upper_first,
    write_text,
)

#: the file written into `out_dir`
DEMO_FILE = "demo_instructions.json"
#: records in the demo set
DEMO_SIZE = 300

#: each kind's instruction texts (a record's instruction is one of them, its slots filled)
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "qa": (
        "Answer the question using only the passage.",
        "What is {C} commonly used to treat?",
    ),
    "extraction": (
        "List the diseases mentioned in the following text.",
        "List the chemicals and drugs mentioned in the following text.",
        "Extract every drug and disease mentioned in the sentence, as 'Drug: ...; Disease: ...'.",
    ),
    "generation": (
        "Summarise the following case report in one sentence.",
        "Write a one-sentence conclusion for this study.",
        "Explain {D} to a patient in simple terms.",
    ),
}
KINDS = tuple(INSTRUCTIONS)


def _detokenise(text: str) -> str:
    """The demo NER corpus's space-separated tokens as running text (``Alzheimer ' s`` ->
    ``Alzheimer's``, ``non - small`` -> ``non-small``, no space before punctuation)."""
    text = text.replace(" ' s", "'s")
    text = re.sub(r"(?<=\w) - (?=\w)", "-", text)
    text = re.sub(r" ([,.;:%)])", r"\1", text)
    return text.replace("( ", "(")


#: the lexicons the demo draws from: shared and training-only entities (module docstring)
_DISEASES = [_detokenise(d) for d in lexicon(DISEASES, "train")]
_CHEMICALS = [_detokenise(c) for c in lexicon(CHEMICALS, "train")]
#: drug -> what it treats (the no-input questions)
DRUG_USES = {
    "metformin": "type 2 diabetes mellitus",
    "warfarin": "atrial fibrillation and venous thrombosis",
    "tamoxifen": "oestrogen receptor-positive breast cancer",
    "methotrexate": "rheumatoid arthritis and some cancers",
    "atorvastatin": "high cholesterol",
    "lithium carbonate": "bipolar disorder",
    "valproic acid": "epilepsy and bipolar disorder",
    "ibuprofen": "pain, fever and inflammation",
    "dexamethasone": "inflammation and severe allergic reactions",
    "haloperidol": "schizophrenia and acute agitation",
    "lisinopril": "hypertension and heart failure",
    "cisplatin": "testicular, ovarian and lung cancers",
    "paclitaxel": "breast and ovarian cancers",
    "folic acid": "folate deficiency anaemia",
}
#: disease -> a plain-language gloss (the no-input explanations)
DISEASE_GLOSSES = {
    "hypertension": "a condition in which the pressure of the blood in your arteries stays "
    "too high",
    "asthma": "a long-term condition in which the airways of the lungs swell and narrow",
    "heart failure": "a condition in which the heart does not pump blood as well as it should",
    "type 2 diabetes mellitus": "a condition in which the body does not use insulin well, so "
    "the sugar in your blood stays too high",
    "psoriasis": "a skin condition that causes red, scaly patches",
    "rheumatoid arthritis": "a condition in which the immune system attacks the joints, "
    "making them painful and swollen",
    "migraine": "a type of headache that comes back and can make you sensitive to light",
    "osteoporosis": "a condition in which the bones become thin and break more easily",
    "multiple sclerosis": "a condition in which the immune system damages the coating of the "
    "nerves",
    "cystic fibrosis": "an inherited condition in which thick mucus builds up in the lungs and "
    "the gut",
}
#: the people of passages and trials (who can have the disease), and an adult's sex
PATIENTS = [p for p in FILLERS["P"] if p != "healthy volunteers"]
ADULTS = ["man", "woman"]
SYMPTOMS = ["fever", "fatigue", "shortness of breath", "chest pain", "joint pain", "weight loss",
            "abdominal pain", "a persistent cough", "headache"]  # fmt: skip
LAB_FINDINGS = ["an elevated C-reactive protein", "a low haemoglobin", "raised liver enzymes",
                "a high white cell count", "an elevated creatinine",
                "a low platelet count"]  # fmt: skip
OUTCOMES = {  # the report's words -> the summary's
    "recovered fully": "recovered",
    "was discharged in good condition": "recovered",
    "showed partial improvement": "improved partially",
    "required admission to intensive care": "deteriorated",
}
TRIAL_MEASURES = ["the rate of hospital admission", "mortality at one year",
                  "the frequency of relapses", "the mean symptom score",
                  "the need for rescue medication"]  # fmt: skip


def _mentions(tokens: list[str], tags: list[str], kind: str) -> list[str]:
    """The mentions of entity type `kind` in a BIO-tagged sentence, in order, each once."""
    spans: list[list[str]] = []
    for token, tag in zip(tokens, tags, strict=True):
        if tag == f"B-{kind}":
            spans.append([token])
        elif tag == f"I-{kind}" and spans:
            spans[-1].append(token)
    return list(dict.fromkeys(_detokenise(" ".join(span)) for span in spans))


def _listed(items: Sequence[str]) -> str:
    return "; ".join(items) if items else "None"


def _sentence(rng: random.Random) -> tuple[str, list[str], list[str]]:
    tokens, tags = ner_sentence(rng, "train")
    text = _detokenise(" ".join(tokens))
    return text, _mentions(tokens, tags, "Disease"), _mentions(tokens, tags, "Chemical")


# --- the three kinds: each returns (instruction, input, output) ---


def _qa(rng: random.Random) -> tuple[str, str, str]:
    if rng.random() < 0.25:
        drug = rng.choice(sorted(DRUG_USES))
        answer = f"{upper_first(drug)} is commonly used to treat {DRUG_USES[drug]}."
        return INSTRUCTIONS["qa"][1].format(C=drug), "", answer
    disease, drug = rng.choice(_DISEASES), rng.choice(_CHEMICALS)
    duration, people = rng.choice(FILLERS["DUR"]), rng.choice(PATIENTS)
    gene, age, sex = rng.choice(FILLERS["GENE"]), rng.randint(18, 89), rng.choice(ADULTS)
    passages = [
        (f"{upper_first(people)} with {disease} were randomly assigned to receive {drug} or "
         f"placebo for {duration}.",
         [("Which drug was compared with placebo?", drug),
          ("For how long was the treatment given?", duration),
          ("Which condition did the participants have?", disease)]),
        (f"A {age}-year-old {sex} with a history of {disease} was admitted after an overdose "
         f"of {drug}.",
         [("What condition did the patient have a history of?", disease),
          ("How old was the patient?", f"{age} years"),
          ("Which drug did the patient take an overdose of?", drug)]),
        (f"Mutations in the {_detokenise(gene)} gene are a common cause of {disease} in "
         f"{people}.",
         [("Which gene is implicated in the passage?", _detokenise(gene)),
          ("Which disease do the mutations cause?", disease)]),
    ]  # fmt: skip
    passage, questions = rng.choice(passages)
    question, answer = rng.choice(questions)
    return INSTRUCTIONS["qa"][0], f"Passage: {passage}\nQuestion: {question}", answer


def _extraction(rng: random.Random) -> tuple[str, str, str]:
    text, diseases, chemicals = _sentence(rng)
    which = rng.randrange(3)
    if which == 0:
        return INSTRUCTIONS["extraction"][0], text, _listed(diseases)
    if which == 1:
        return INSTRUCTIONS["extraction"][1], text, _listed(chemicals)
    both = f"Drug: {_listed(chemicals)}; Disease: {_listed(diseases)}"
    return INSTRUCTIONS["extraction"][2], text, both


def _generation(rng: random.Random) -> tuple[str, str, str]:
    which = rng.randrange(3)
    disease, drug = rng.choice(_DISEASES), rng.choice(_CHEMICALS)
    if which == 2:
        disease = rng.choice(sorted(DISEASE_GLOSSES))
        answer = (
            f"{upper_first(disease)} is {DISEASE_GLOSSES[disease]}. Treatment and regular "
            "check-ups with your doctor can help you keep it under control."
        )
        return INSTRUCTIONS["generation"][2].format(D=disease), "", answer
    if which == 0:
        age, sex = rng.randint(18, 89), rng.choice(ADULTS)
        symptom, finding = rng.choice(SYMPTOMS), rng.choice(LAB_FINDINGS)
        outcome = rng.choice(sorted(OUTCOMES))
        weeks = rng.randint(2, 12)
        report = (
            f"A {age}-year-old {sex} with {disease} presented with {symptom} for {weeks} weeks. "
            f"Laboratory tests showed {finding}. Treatment with {drug} was started, and the "
            f"patient {outcome}."
        )
        summary = (
            f"A {age}-year-old {sex} with {disease} and {symptom} {OUTCOMES[outcome]} on {drug}."
        )
        return INSTRUCTIONS["generation"][0], report, summary
    people, measure = rng.choice(PATIENTS), rng.choice(TRIAL_MEASURES)
    n, change = rng.randint(80, 900), rng.randint(5, 45)
    duration = rng.choice(FILLERS["DUR"])
    better = rng.random() < 0.7
    study = (
        f"We randomly assigned {n} {people} with {disease} to {drug} or placebo for {duration}. "
        f"The primary outcome was {measure}. Compared with placebo, {drug} "
        + (f"reduced {measure} by {change}%." if better else f"did not change {measure}.")
    )
    effect = "reduced" if better else "did not reduce"
    conclusion = f"In {people} with {disease}, {drug} {effect} {measure} compared with placebo."
    return INSTRUCTIONS["generation"][1], study, conclusion


KIND_WRITERS: dict[str, Callable[[random.Random], tuple[str, str, str]]] = {
    "qa": _qa,
    "extraction": _extraction,
    "generation": _generation,
}


def demo_records(n: int = DEMO_SIZE, seed: int = 0) -> list[dict[str, str]]:
    """`n` records, the kinds in equal numbers (as `n` allows) and shuffled."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = random.Random(f"bioprobe-demo-instructions:{seed}")
    records = []
    for kind in shuffled_labels(rng, n, KINDS):
        instruction, text, output = KIND_WRITERS[kind](rng)
        records.append({"instruction": instruction, "input": text, "output": output})
    return records


def write_demo_instructions(out_dir: str | Path, n: int = DEMO_SIZE, seed: int = 0) -> Path:
    """Write the demo set as one JSON array (the BioInstruct layout); return the file."""
    text = json.dumps(demo_records(n, seed), indent=2, ensure_ascii=False) + "\n"
    return write_text(Path(out_dir) / DEMO_FILE, text)


def kind_of(instruction: str) -> str | None:
    """The kind of a demo instruction (None for another set's)."""
    for kind, texts in INSTRUCTIONS.items():
        for text in texts:
            pattern = re.sub(r"\\\{[CD]\\\}", ".+", re.escape(text))  # the slots match anything
            if re.fullmatch(pattern, instruction):
                return kind
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bioprobe.instructions.demo",
        description="Write the deterministic demo instruction set.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--n", type=int, default=DEMO_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_demo_instructions(args.out_dir, n=args.n, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
