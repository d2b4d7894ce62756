"""Deterministic, biomedical-looking demo corpora written by the project (no download, no licence).

- NER (`write_demo_ner`): abstract- and case-report-style sentences in BIO TSV with `Disease` and
  `Chemical` mentions, many of them multi-word (so I- tags occur). Part of each lexicon is seen
  only in train and part only in validation/test, so the task needs context, not memorisation.
- NLI (`write_demo_nli`): MedNLI-format premise/hypothesis pairs from clinical templates,
  balanced over entailment / contradiction / neutral. The label follows from comparing the two
  sentences (same finding? same polarity? antonym?), while the hypothesis alone carries no
  information: its finding, polarity and wording are drawn independently of the label.
- relation, PICO, similarity, multilabel (`write_demo_relation`, `write_demo_pico`,
  `write_demo_similarity`, `write_demo_multilabel`): GAD-, EBM-NLP-, BIOSSES- and HoC-style
  corpora in the layouts BLURB ships.

Pure Python `random.Random` with string seeds, so the bytes are identical across runs, platforms
and Python hash seeds. CLI: `python -m bioprobe.data.demo KIND OUT_DIR [--seed N]`, KIND a key
of `CORPORA`.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import TypeVar

from bioprobe.data.prepare import SPLITS
from bioprobe.io import atomic_path
from bioprobe.tasks.ner import NER
from bioprobe.tasks.pair import Pair
from bioprobe.tasks.relation import Relation

# --- shared: corpus registry, split writing, template filling ---

#: the demo corpora by name (the CLI's and the demo rules' `kind`): their task type, writer
#: and the rest of their `tasks:` entry; filled by `_corpus` below each writer
CORPORA: dict[str, dict] = {}

#: one split's rows: (its seeded rng, split name, number of items) -> rows, each with its "\n"
RowFn = Callable[[random.Random, str, int], Iterable[str]]
Writer = TypeVar("Writer", bound=Callable[..., dict[str, Path]])


def _corpus(name: str, task_type: str, **config: object) -> Callable[[Writer], Writer]:
    """Register the decorated writer in CORPORA as corpus `name` (config: its `tasks:` keys)."""

    def register(writer: Writer) -> Writer:
        CORPORA[name] = {"type": task_type, "writer": writer, "config": config}
        return writer

    return register


def _split_sizes(n_train: int, n_validation: int, n_test: int) -> dict[str, int]:
    sizes = dict(zip(SPLITS, (n_train, n_validation, n_test), strict=True))
    for split, n in sizes.items():
        if n < 1:
            raise ValueError(f"n_{split} must be at least 1, got {n}")
    return sizes


def _write_splits(
    out_dir: str | Path,
    files: dict[str, str],
    header: str,
    kind: str,
    seed: int,
    sizes: dict[str, int],
    row_fn: RowFn,
) -> dict[str, Path]:
    """Write `header` and `row_fn`'s rows to each split's file; return the path of each split.
    Every split has its own rng, seeded by (kind, seed, split), so a split's bytes do not
    depend on the other splits' sizes."""
    out_dir = Path(out_dir)
    paths = {}
    for split, n in sizes.items():
        rng = random.Random(f"bioprobe-demo-{kind}:{seed}:{split}")
        text = header + "".join(row_fn(rng, split, n))
        paths[split] = write_text(out_dir / files[split], text)
    return paths


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _pmids(rng: random.Random, split: str, n: int) -> list[int]:
    """n PMID-like ids, unique across splits: each split draws from its own range."""
    number = SPLITS.index(split)
    return rng.sample(range(10_000_000 * (number + 1), 10_000_000 * (number + 2)), n)


def shuffled_labels(rng: random.Random, n: int, labels: Sequence[str]) -> list[str]:
    """n of `labels`, as equal in number as n allows, in random order."""
    drawn = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(drawn)
    return drawn


def lexicon(pools: dict[str, list[str]], split: str) -> list[str]:
    return pools["shared"] + pools["train" if split == "train" else "eval"]


def _entity(rng: random.Random, pool: list[str], used: set[str]) -> str:
    """A mention not used yet in this sentence (so {D} and {D2} differ)."""
    choice = rng.choice([m for m in pool if m not in used])
    used.add(choice)
    return choice


def _slot(piece: str) -> str | None:
    """The slot name of a template token `{X}`, None for a literal token."""
    return piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None


def _fill_slots(rng: random.Random, text: str, fillers: dict[str, list[str]]) -> str:
    """Replace each `{SLOT}` occurrence by its own draw from `fillers[SLOT]`."""
    for slot, choices in fillers.items():
        while "{" + slot + "}" in text:
            text = text.replace("{" + slot + "}", rng.choice(choices), 1)
    return text


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _bio_lines(tokens: list[str], tags: list[str]) -> str:
    """One sentence as `token<TAB>tag` lines."""
    return "".join(f"{tok}\t{tag}\n" for tok, tag in zip(tokens, tags, strict=True))


# --- NER: sentences with Disease/Chemical mentions in BIO TSV ---

NER_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
NER_CORPUS = NER.name
#: lexicons: shared by all splits, train only, validation/test only
DISEASES = {
    "shared": [
        "type 2 diabetes mellitus", "hypertension", "breast cancer", "rheumatoid arthritis",
        "chronic kidney disease", "asthma", "heart failure", "Alzheimer ' s disease",
        "multiple sclerosis", "acute myeloid leukemia", "colorectal cancer", "hepatitis C",
        "atrial fibrillation", "chronic obstructive pulmonary disease",
        "major depressive disorder", "psoriasis",
    ],
    "train": [
        "systemic lupus erythematosus", "ulcerative colitis", "pulmonary fibrosis", "migraine",
        "osteoporosis", "cystic fibrosis", "non - small cell lung cancer", "sickle cell anemia",
    ],
    "eval": [
        "Crohn ' s disease", "pulmonary arterial hypertension", "glioblastoma", "gout",
        "myasthenia gravis", "diabetic nephropathy", "hepatocellular carcinoma",
        "Duchenne muscular dystrophy",
    ],
}  # fmt: skip
CHEMICALS = {
    "shared": [
        "acetylsalicylic acid", "metformin", "cisplatin", "doxorubicin", "lithium carbonate",
        "warfarin", "valproic acid", "tamoxifen", "methotrexate", "sodium chloride",
        "ascorbic acid", "nitric oxide", "atorvastatin", "ibuprofen", "hydrogen peroxide",
        "dexamethasone",
    ],
    "train": [
        "cyclophosphamide", "folic acid", "haloperidol", "paclitaxel", "all - trans retinoic acid",
        "lisinopril", "potassium chloride", "5 - fluorouracil",
    ],
    "eval": [
        "gemcitabine", "carbamazepine", "zoledronic acid", "amiodarone", "sodium bicarbonate",
        "prednisolone", "vincristine", "mycophenolate mofetil",
    ],
}  # fmt: skip
FILLERS = {
    "P": ["adults", "children", "elderly patients", "postmenopausal women", "outpatients",
          "healthy volunteers", "hospitalized patients"],
    "DUR": ["12 weeks", "6 months", "two years", "four weeks", "18 months", "10 days"],
    "GENE": ["BRCA1", "TP53", "CFTR", "APOE", "HLA - B27", "LRRK2", "JAK2"],
    "SEX": ["man", "woman", "boy", "girl"],
}  # fmt: skip
# {D}/{D2}: Disease, {C}/{C2}: Chemical, {N}/{M}/{AGE}/{DOSE}: numbers, others: FILLERS (all O)
NER_TEMPLATES = [
    "Patients with {D} were randomly assigned to receive {C} or placebo for {DUR} .",
    "Treatment with {C} significantly reduced the incidence of {D} in {P} .",
    "A {AGE} - year - old {SEX} with a history of {D} was admitted after an overdose of {C} .",
    "{C} - induced {D} was observed in {N} of {M} patients .",
    "The association between {D} and long - term exposure to {C} remains unclear .",
    "We conducted a retrospective cohort study of {M} {P} diagnosed with {D} .",
    "Serum levels of {C} were measured at baseline and after {DUR} of follow - up .",
    "No significant differences were found between the two groups at baseline .",
    "The study was approved by the local ethics committee and all participants gave written "
    "informed consent .",
    "Mutations in the {GENE} gene are a common cause of {D} in {P} .",
    "{D} and {D2} frequently coexist in {P} receiving long - term {C} .",
    "Combination therapy with {C} and {C2} improved overall survival in patients with {D} .",
    "The patient developed {D} after {DUR} of therapy with {C} , which resolved after "
    "discontinuation .",
    "Mean follow - up was {N} months and {N} % of patients completed the protocol .",
    "In vitro , {C} inhibited the proliferation of cell lines derived from {D} .",
    "These findings suggest that {C} may be a useful adjunct in the management of {D} .",
    "The prevalence of {D} increased with age in both men and women .",
    "Adverse events were mild and transient , and no cases of {D} were reported .",
    "Plasma concentrations of {C} were higher in patients with {D} than in healthy controls "
    "( p < 0.05 ) .",
    "{P} receiving {DOSE} mg of {C} daily had fewer episodes of {D} than those given {C2} .",
    "Expression of {GENE} was reduced in tissue samples from {N} patients with {D} .",
    "Oxidative stress caused by {C} has been implicated in the pathogenesis of {D} and {D2} .",
    "Dose adjustment of {C} is recommended in {P} with impaired renal function .",
    "Blood samples were collected after an overnight fast and stored at - 80 degrees .",
]


def ner_sentence(rng: random.Random, split: str) -> tuple[list[str], list[str]]:
    """One sentence from a random template: (tokens, IOB2 tags)."""
    tokens: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for piece in rng.choice(NER_TEMPLATES).split():
        slot = _slot(piece)
        if slot in ("D", "D2", "C", "C2"):
            kind, pools = ("Disease", DISEASES) if slot[0] == "D" else ("Chemical", CHEMICALS)
            words = _entity(rng, lexicon(pools, split), used).split()
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        elif slot is not None:
            words = _filler(rng, slot).split()
            tokens += words
            tags += ["O"] * len(words)
        else:
            tokens.append(piece)
            tags.append("O")
    tokens[0] = upper_first(tokens[0])
    return tokens, tags


def _filler(rng: random.Random, slot: str) -> str:
    if slot in FILLERS:
        return rng.choice(FILLERS[slot])
    low, high = {"N": (3, 60), "M": (80, 900), "AGE": (18, 89), "DOSE": (5, 500)}[slot]
    return str(rng.randint(low, high))


def _ner_rows(rng: random.Random, split: str, n: int) -> Iterator[str]:
    """n sentences, a blank line between two (none after the last: the files end so)."""
    for i in range(n):
        yield ("\n" if i else "") + _bio_lines(*ner_sentence(rng, split))


@_corpus(NER_CORPUS, NER.name, format="bio-tsv", splits=NER_FILES)
def write_demo_ner(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 400,
    n_validation: int = 150,
    n_test: int = 150,
) -> dict[str, Path]:
    """Write train.tsv / devel.tsv / test.tsv (BIO TSV); return the path of each split."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    return _write_splits(out_dir, NER_FILES, "", "ner", seed, sizes, _ner_rows)


# --- NLI: a finding (present/absent) or a measurement (high/low), stated in the premise ---

NLI_FILES = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
NLI_LABELS = ("entailment", "contradiction", "neutral")
NLI_CORPUS = "nli"
FINDINGS = [
    ["chest pain", "chest discomfort"],
    ["shortness of breath", "dyspnea"],
    ["fever", "fevers"],
    ["nausea", "nausea"],
    ["abdominal pain", "belly pain"],
    ["headache", "head pain"],
    ["cough", "coughing"],
    ["palpitations", "heart palpitations"],
    ["dizziness", "lightheadedness"],
    ["rash", "skin rash"],
    ["leg swelling", "lower extremity edema"],
    ["hematuria", "blood in the urine"],
    ["syncope", "loss of consciousness"],
    ["vomiting", "emesis"],
    ["diarrhea", "loose stools"],
    ["confusion", "altered mental status"],
    ["weight loss", "unintentional weight loss"],
    ["night sweats", "night sweats"],
    ["jaundice", "yellowing of the skin"],
    ["seizures", "convulsions"],
]
MEASURES = [
    "potassium", "sodium", "hemoglobin", "white blood cell count", "creatinine", "glucose",
    "blood pressure", "heart rate", "platelet count", "troponin", "lactate", "calcium",
]  # fmt: skip
LEVEL_WORDS = {"high": ["elevated", "high", "increased"], "low": ["low", "decreased", "reduced"]}
HISTORY = [
    "hypertension", "type 2 diabetes", "COPD", "atrial fibrillation", "end stage renal disease",
    "coronary artery disease", "HIV", "alcohol abuse", "asthma", "hypothyroidism", "CHF",
]  # fmt: skip
CONTEXTS = [
    "{AGE} yo {SEX} with a history of {HX} .",
    "Patient is {AGE_A} {AGE} year old {SEX} with {HX} and {HX2} .",
    "{AGE} year old {SEX} with PMH significant for {HX} , transferred from an outside hospital .",
    "The patient is {AGE_A} {AGE} year old {SEX} admitted for management of {HX} .",
]
FINDING_CLAUSES = {
    True: [
        "{SUBJ} presents with {F} .",
        "{SUBJ} reports {F} for the past {DAYS} days .",
        "On arrival {SUBJ_LOWER} complained of {F} .",
        "{SUBJ} was found to have {F} on examination .",
    ],
    False: [
        "{SUBJ} denies {F} .",
        "On review of systems there was no {F} .",
        "{SUBJ} has been without {F} since discharge .",
        "{SUBJ} reports no {F} at this time .",
    ],
}
MEASURE_CLAUSES = [
    "Labs were notable for {A} {LEVEL} {M} .",
    "On admission {SUBJ_POSS} {M} was {LEVEL} .",
    "{SUBJ_POSS_UPPER} {M} was noted to be {LEVEL} this morning .",
]
FINDING_HYPOTHESES = {
    True: [
        "The patient has {F}.",
        "Patient is experiencing {F}.",
        "The patient reports {F}.",
        "The patient presents with {F}.",
    ],
    False: [
        "The patient does not have {F}.",
        "Patient denies {F}.",
        "There is no {F}.",
        "The patient is free of {F}.",
    ],
}
MEASURE_HYPOTHESES = ["The patient has {A} {LEVEL} {M}.", "The patient's {M} is {LEVEL}."]


def _and(items: Sequence[str]) -> str:
    return " and ".join(items)


def _person(rng: random.Random) -> dict[str, str]:
    """Template fields about the patient: sex, pronouns, age (with its article)."""
    male = rng.random() < 0.5
    he, his = ("he", "his") if male else ("she", "her")
    use_pronoun = rng.random() < 0.5
    poss = his if rng.random() < 0.5 else "the patient's"
    age = rng.randint(19, 94)
    return {
        "SEX": rng.choice(["male", "man"] if male else ["female", "woman"]),
        "SUBJ": he.capitalize() if use_pronoun else "The patient",
        "SUBJ_LOWER": he if use_pronoun else "the patient",
        "SUBJ_POSS": poss,
        "SUBJ_POSS_UPPER": upper_first(poss),
        "AGE": str(age),
        "AGE_A": "an" if age in (11, 18) or 80 <= age <= 89 else "a",
        "DAYS": str(rng.randint(2, 14)),
    }


def _context(rng: random.Random, person: dict[str, str]) -> str:
    hx, hx2 = rng.sample(HISTORY, 2)
    return rng.choice(CONTEXTS).format(HX=hx, HX2=hx2, **person)


def nli_pair(rng: random.Random, label: str) -> tuple[str, str]:
    """(premise, hypothesis) with the given gold label."""
    person = _person(rng)
    context = _context(rng, person)
    if rng.random() < 0.6:
        clause, hypothesis = _finding_pair(rng, label, person)
    else:
        clause, hypothesis = _measure_pair(rng, label, person)
    return f"{context} {clause}", hypothesis


def _finding_pair(rng: random.Random, label: str, person: dict[str, str]) -> tuple[str, str]:
    """Premise findings share one polarity; the hypothesis names one of them or another."""
    mentioned = rng.sample(range(len(FINDINGS)), rng.choice([1, 1, 2]))
    present = rng.random() < 0.5
    clause = rng.choice(FINDING_CLAUSES[present]).format(
        F=_and([rng.choice(FINDINGS[i]) for i in mentioned]), **person
    )
    if label == "neutral":
        target = rng.choice([i for i in range(len(FINDINGS)) if i not in mentioned])
        polarity = rng.random() < 0.5
    else:
        target = rng.choice(mentioned)
        polarity = present if label == "entailment" else not present
    template = rng.choice(FINDING_HYPOTHESES[polarity])
    return clause, template.format(F=rng.choice(FINDINGS[target]))


def _measure_pair(rng: random.Random, label: str, person: dict[str, str]) -> tuple[str, str]:
    """A lab/vital that is high or low; contradiction by antonym, neutral by another measure."""
    measure = rng.choice(MEASURES)
    level = rng.choice(["high", "low"])
    clause = _format_level(
        rng.choice(MEASURE_CLAUSES), measure, rng.choice(LEVEL_WORDS[level]), person
    )
    if label == "neutral":
        measure = rng.choice([m for m in MEASURES if m != measure])
        level = rng.choice(["high", "low"])
    elif label == "contradiction":
        level = "low" if level == "high" else "high"
    template = rng.choice(MEASURE_HYPOTHESES)
    return clause, _format_level(template, measure, rng.choice(LEVEL_WORDS[level]))


def _format_level(
    template: str, measure: str, level: str, person: dict[str, str] | None = None
) -> str:
    article = "an" if level[0] in "aeiou" else "a"
    return template.format(M=measure, LEVEL=level, A=article, **(person or {}))


def balanced_labels(rng: random.Random, n: int) -> list[str]:
    """n labels, as equal in number as n allows, in random order."""
    return shuffled_labels(rng, n, NLI_LABELS)


def _nli_rows(rng: random.Random, split: str, n: int) -> Iterator[str]:
    """n MedNLI JSON lines, labels balanced."""
    for index, label in enumerate(balanced_labels(rng, n)):
        premise, hypothesis = nli_pair(rng, label)
        row = {
            "gold_label": label,
            "pairID": f"demo-{split}-{index:05d}",
            "sentence1": premise,
            "sentence2": hypothesis,
        }
        yield json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"


@_corpus(
    NLI_CORPUS,
    Pair.name,
    format="pairs-jsonl",
    splits=NLI_FILES,
    fields={"id": "pairID", "text_a": "sentence1", "text_b": "sentence2", "label": "gold_label"},
)
def write_demo_nli(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 400,
    n_validation: int = 150,
    n_test: int = 150,
) -> dict[str, Path]:
    """Write train.jsonl / dev.jsonl / test.jsonl (MedNLI format); return the path of each split."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    return _write_splits(out_dir, NLI_FILES, "", "nli", seed, sizes, _nli_rows)


# --- relation: GAD-style gene-disease sentences, the entities masked by placeholders ---

RELATION_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
RELATION_LABELS = ("0", "1")  # GAD's: 1 = the sentence asserts an association
RELATION_CORPUS = Relation.name
#: the claim about @GENE$ and @DISEASE$, as (associated, not associated): the two differ in
#: the polarity cue only, so the label is read from it, not from which template was drawn
RELATION_CLAIMS = [
    (
        "the {VAR} polymorphism of @GENE$ is associated with an increased risk of @DISEASE$",
        "the {VAR} polymorphism of @GENE$ is not associated with the risk of @DISEASE$",
    ),
    (
        "carriers of the @GENE$ {VAR} allele had a higher susceptibility to @DISEASE$",
        "carriers of the @GENE$ {VAR} allele showed no difference in susceptibility to @DISEASE$",
    ),
    (
        "genetic variation in @GENE$ contributes to @DISEASE$ susceptibility",
        "genetic variation in @GENE$ does not contribute to @DISEASE$ susceptibility",
    ),
    (
        "the @GENE$ gene may play a role in the genetic predisposition to @DISEASE$",
        "the @GENE$ gene is unlikely to play a role in the genetic predisposition to @DISEASE$",
    ),
    (
        "@DISEASE$ was significantly associated with the @GENE$ {VAR} genotype",
        "@DISEASE$ was not associated with the @GENE$ {VAR} genotype",
    ),
    (
        "the risk of @DISEASE$ was increased in carriers of the @GENE$ {VAR} variant",
        "the risk of @DISEASE$ was not increased in carriers of the @GENE$ {VAR} variant",
    ),
]
RELATION_OPENINGS = [
    "Our results suggest that {C}", "These data indicate that {C}", "In {P}, {C}",
    "Taken together, {C}", "In this case-control study, {C}", "{C}",
]  # fmt: skip
RELATION_TAILS = [
    ".", " in {P}.", " (p = {PV}).", ", independently of {OTHER} status.",
    ", as in previous studies of {OTHER_DISEASE}.", " after adjustment for age and sex.",
]  # fmt: skip
RELATION_FILLERS = {
    "VAR": ["C677T", "Arg72Pro", "-308G/A", "Ala-9Val", "Ser326Cys", "rs1801133", "I/D",
            "Val158Met", "Gln192Arg", "A1298C"],
    "P": ["a Japanese population", "Caucasian patients", "a cohort of Chinese women",
          "a UK population", "Korean children", "Finnish adults", "a Brazilian sample"],
    "PV": ["0.001", "0.004", "0.02", "0.03", "0.21", "0.34", "0.47", "0.82"],
    "OTHER": ["TNF-alpha", "IL-6", "K-ras", "APOE", "HLA-DRB1", "CTLA-4"],
    "OTHER_DISEASE": ["hypertension", "asthma", "type 2 diabetes", "breast cancer",
                      "rheumatoid arthritis"],
}  # fmt: skip


def relation_sentence(rng: random.Random, label: str) -> str:
    """One GAD-style sentence asserting (label 1) or denying (label 0) the association."""
    claim = rng.choice(RELATION_CLAIMS)[0 if label == "1" else 1]
    text = rng.choice(RELATION_OPENINGS).replace("{C}", claim) + rng.choice(RELATION_TAILS)
    return upper_first(_fill_slots(rng, text, RELATION_FILLERS))


def _relation_rows(rng: random.Random, split: str, n: int) -> Iterator[str]:
    """n `index sentence label` rows, labels balanced."""
    for i, label in enumerate(shuffled_labels(rng, n, RELATION_LABELS)):
        yield f"{i}\t{relation_sentence(rng, label)}\t{label}\n"


@_corpus(
    RELATION_CORPUS,
    Relation.name,
    format="tsv",
    splits=RELATION_FILES,
    fields={"text": "sentence"},
    negative_label="0",
)
def write_demo_relation(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 400,
    n_validation: int = 150,
    n_test: int = 150,
) -> dict[str, Path]:
    """Write train.tsv / dev.tsv / test.tsv as BLURB ships GAD (a header `index sentence
    label`, labels 0/1, balanced); return the path of each split."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    header = "index\tsentence\tlabel\n"
    return _write_splits(out_dir, RELATION_FILES, header, "relation", seed, sizes, _relation_rows)


# --- PICO: RCT-abstract sentences with IO tags, in BLURB's EBM-NLP layout ---

PICO_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
PICO_CORPUS = "pico"
#: span pools per PICO type, shared by all splits, train only, validation/test only
PICO_SPANS = {
    "PAR": {
        "shared": [
            "patients with type 2 diabetes", "children with acute otitis media",
            "adults with moderate to severe asthma", "postmenopausal women with osteoporosis",
            "elderly patients with hip fracture",
            "smokers with chronic obstructive pulmonary disease",
            "patients undergoing coronary artery bypass surgery",
            "pregnant women at risk of preterm birth",
            "outpatients with major depressive disorder", "patients with chronic low back pain",
        ],
        "train": [
            "infants with bronchiolitis", "patients with rheumatoid arthritis",
            "obese adolescents", "patients with advanced non-small cell lung cancer",
            "healthy volunteers", "women with polycystic ovary syndrome",
        ],
        "eval": [
            "patients with atrial fibrillation",
            "children with attention deficit hyperactivity disorder",
            "adults with chronic insomnia", "patients with stage III colon cancer",
            "nursing home residents", "men with benign prostatic hyperplasia",
        ],
    },
    "INT": {
        "shared": [
            "metformin", "low-dose aspirin", "placebo", "cognitive behavioural therapy",
            "intravenous iron", "a supervised exercise programme", "inhaled budesonide",
            "vitamin D supplementation", "amoxicillin", "acupuncture",
        ],
        "train": [
            "zoledronic acid", "a low-fat diet", "nicotine replacement therapy",
            "intensive insulin therapy", "physiotherapy", "magnesium sulphate",
        ],
        "eval": [
            "apixaban", "melatonin", "tamsulosin", "mindfulness training", "oral prednisolone",
            "a telephone-based coaching intervention",
        ],
    },
    "OUT": {
        "shared": [
            "HbA1c", "all-cause mortality", "pain scores", "quality of life",
            "length of hospital stay", "systolic blood pressure",
            "forced expiratory volume in one second", "adverse events", "relapse rate",
            "bone mineral density",
        ],
        "train": [
            "fracture incidence", "body mass index", "smoking abstinence",
            "time to first exacerbation", "serum ferritin", "depressive symptoms",
        ],
        "eval": [
            "stroke or systemic embolism", "sleep onset latency", "urinary symptom scores",
            "disease-free survival", "hospital readmission", "fatigue",
        ],
    },
}  # fmt: skip
#: slot -> PICO type ({P}: participants, {I}/{I2}: interventions, {O}/{O2}: outcomes)
PICO_SLOTS = {"P": "PAR", "I": "INT", "I2": "INT", "O": "OUT", "O2": "OUT"}
#: an abstract opens with a title-like sentence, then body sentences ({N}, {DUR}, {PCT}: O)
PICO_TITLES = [
    "{I} versus {I2} in {P} : a randomised controlled trial .",
    "Efficacy of {I} for the prevention of {O} in {P} .",
    "A double-blind , placebo-controlled trial of {I} in {P} .",
]
PICO_SENTENCES = [
    "To evaluate the efficacy and safety of {I} in {P} .",
    "{P} were randomly assigned to {I} or {I2} for {DUR} .",
    "A total of {N} {P} were enrolled and followed up for {DUR} .",
    "The primary outcome was {O} at {DUR} .",
    "Secondary outcomes included {O} and {O2} .",
    "{I} significantly reduced {O} compared with {I2} ( p < 0.05 ) .",
    "There was no significant difference in {O} between the two groups .",
    "Compared with {I2} , {I} improved {O} and {O2} in {P} .",
    "Baseline characteristics were similar in both arms .",
    "{O} decreased by {PCT} % in the {I} group .",
    "In {P} , {I} was well tolerated and improved {O} .",
    "Analysis was by intention to treat .",
    "This trial is registered with ClinicalTrials.gov .",
]


def pico_sentence(rng: random.Random, template: str, split: str) -> tuple[list[str], list[str]]:
    """One sentence of `template` with its slots filled: (tokens, IO tags)."""
    tokens: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for piece in template.split():
        slot = _slot(piece)
        if slot in PICO_SLOTS:
            kind = PICO_SLOTS[slot]
            words = _entity(rng, lexicon(PICO_SPANS[kind], split), used).split()
            tags += [f"I-{kind}"] * len(words)
        elif slot is not None:
            words = _pico_filler(rng, slot).split()
            tags += ["O"] * len(words)
        else:
            words = [piece]
            tags.append("O")
        tokens += words
    tokens[0] = upper_first(tokens[0])
    return tokens, tags


def _pico_filler(rng: random.Random, slot: str) -> str:
    if slot == "DUR":
        return rng.choice(["12 weeks", "6 months", "one year", "8 weeks", "24 months"])
    low, high = {"N": (40, 900), "PCT": (5, 60)}[slot]
    return str(rng.randint(low, high))


def pico_document(rng: random.Random, split: str) -> list[tuple[list[str], list[str]]]:
    """An abstract: a title, then three to six body sentences."""
    templates = [rng.choice(PICO_TITLES), *rng.sample(PICO_SENTENCES, rng.randint(3, 6))]
    return [pico_sentence(rng, t, split) for t in templates]


def _pico_rows(rng: random.Random, split: str, n: int) -> Iterator[str]:
    """n abstracts, each opened by `-DOCSTART- (PMID)`, a blank line after every sentence."""
    for pmid in _pmids(rng, split, n):
        yield f"-DOCSTART- ({pmid})\n\n"
        for tokens, tags in pico_document(rng, split):
            yield _bio_lines(tokens, tags) + "\n"


@_corpus(PICO_CORPUS, "pico", format="bio-tsv", splits=PICO_FILES)
def write_demo_pico(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 120,
    n_validation: int = 40,
    n_test: int = 40,
) -> dict[str, Path]:
    """Write train.tsv / dev.tsv / test.tsv in BLURB's EBM-NLP layout: `n_*` abstracts, each
    opened by `-DOCSTART- (PMID)` and a blank line, one `token<TAB>tag` line per word with IO
    tags (O, I-PAR, I-INT, I-OUT), a blank line after each sentence. Part of every span pool is
    seen only in train, part only in validation/test, so tagging needs the context."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    return _write_splits(out_dir, PICO_FILES, "", "pico", seed, sizes, _pico_rows)


# --- similarity: BIOSSES-style sentence pairs scored 0-4, in BLURB's BIOSSES layout ---

SIMILARITY_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
SIMILARITY_CORPUS = "similarity"
#: the four facts a statement makes; a pair's score is how many of them the two share
SIMILARITY_FACTS = {
    "gene": ["KRAS", "GATA2", "cyclin D1", "Aurora-A", "PLK1", "miR-146a", "REST", "TP53",
             "MYC", "HOXA9"],
    "effect": [("promotes", "drives"), ("suppresses", "inhibits")],
    "process": ["cell proliferation", "centrosome maturation", "mitotic entry",
                "apoptosis", "DNA repair", "cell migration", "angiogenesis", "autophagy"],
    "cells": ["cervical cancer cells", "KRAS mutant lung cancer cells", "leukemia cells",
              "breast cancer cells", "colorectal cancer cells", "glioma cells"],
}  # fmt: skip
SIMILARITY_TEMPLATES = [
    "{gene} {effect} {process} in {cells}.",
    "In {cells}, {gene} was found to {effect_base} {process}.",
    "Knockdown experiments showed that {gene} {effect} {process} in {cells}.",
    "Our data suggest that {process} in {cells} is {effect_past} by {gene}.",
]
_EFFECT_FORMS = {  # (3rd person, base form, past participle) of each verb
    "promotes": ("promote", "promoted"),
    "drives": ("drive", "driven"),
    "suppresses": ("suppress", "suppressed"),
    "inhibits": ("inhibit", "inhibited"),
}


def _statement(rng: random.Random, facts: dict) -> str:
    """One sentence stating `facts` (the effect's verb and the template drawn freely)."""
    verb = rng.choice(facts["effect"])
    base, past = _EFFECT_FORMS[verb]
    text = rng.choice(SIMILARITY_TEMPLATES).format(
        gene=facts["gene"], effect=verb, effect_base=base, effect_past=past,
        process=facts["process"], cells=facts["cells"],
    )  # fmt: skip
    return upper_first(text)


def similarity_pair(rng: random.Random) -> tuple[str, str, float]:
    """Two statements sharing k of their four facts (k uniform in 0-4) and their score: k plus
    an annotator-like jitter of -0.2, 0 or +0.2 (BIOSSES averages five annotators), in 0-4."""
    first = {name: rng.choice(values) for name, values in SIMILARITY_FACTS.items()}
    shared = set(rng.sample(sorted(SIMILARITY_FACTS), rng.randint(0, 4)))
    second = {
        name: first[name] if name in shared else rng.choice([v for v in values if v != first[name]])
        for name, values in SIMILARITY_FACTS.items()
    }
    score = min(4.0, max(0.0, len(shared) + rng.choice([-0.2, 0.0, 0.2])))
    return _statement(rng, first), _statement(rng, second), round(score, 1)


def _similarity_rows(rng: random.Random, first_id: int, n: int) -> Iterator[str]:
    """n `pair_id sent1 sent2 score` rows, the ids counting on from `first_id`."""
    for pair_id in range(first_id, first_id + n):
        a, b, score = similarity_pair(rng)
        yield f"{pair_id}\t{a}\t{b}\t{score}\n"


@_corpus(
    SIMILARITY_CORPUS,
    "similarity",
    format="tsv",
    splits=SIMILARITY_FILES,
    fields={"id": "pair_id", "text_a": "sent1", "text_b": "sent2"},
)
def write_demo_similarity(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 200,
    n_validation: int = 80,
    n_test: int = 80,
) -> dict[str, Path]:
    """Write train.tsv / dev.tsv / test.tsv as BLURB ships BIOSSES (a header `pair_id sent1
    sent2 score`, pair ids unique across splits); return the path of each split."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    # pair ids run on across splits: each split starts after the previous ones' pairs (the
    # last running total starts no split, hence strict=False)
    first_ids = dict(zip(sizes, accumulate(sizes.values(), initial=1), strict=False))
    return _write_splits(
        out_dir,
        SIMILARITY_FILES,
        "pair_id\tsent1\tsent2\tscore\n",
        "similarity",
        seed,
        sizes,
        lambda rng, split, n: _similarity_rows(rng, first_ids[split], n),
    )


# --- multilabel: HoC-style abstracts, sentences tagged with hallmarks, BLURB's HoC layout ---

MULTILABEL_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
MULTILABEL_CORPUS = "multilabel"
#: HoC's ten hallmarks (BLURB's order: k_v item k is HALLMARKS[k]), each with its cue phrases
HALLMARKS = {
    "activating invasion and metastasis": [
        "promoted invasion and metastasis", "enhanced cell migration",
        "induced epithelial - mesenchymal transition"],
    "avoiding immune destruction": [
        "helped tumour cells evade T cell recognition", "suppressed the antitumour immune response",
        "increased PD - L1 expression"],
    "cellular energetics": [
        "shifted metabolism towards aerobic glycolysis", "increased glucose uptake",
        "enhanced lactate production"],
    "enabling replicative immortality": [
        "restored telomerase activity", "maintained telomere length",
        "allowed cells to bypass replicative senescence"],
    "evading growth suppressors": [
        "abolished RB function", "inactivated p53", "let cells escape contact inhibition"],
    "genomic instability and mutation": [
        "caused DNA damage to accumulate", "increased chromosomal instability",
        "impaired mismatch repair"],
    "inducing angiogenesis": [
        "stimulated VEGF secretion", "induced the formation of new blood vessels",
        "promoted endothelial sprouting"],
    "resisting cell death": [
        "conferred resistance to apoptosis", "up - regulated BCL - 2",
        "reduced caspase - 3 activation"],
    "sustaining proliferative signaling": [
        "activated EGFR signalling", "kept RAS constitutively active",
        "increased cell proliferation"],
    "tumor promoting inflammation": [
        "triggered chronic inflammation", "activated NF - kappaB",
        "recruited tumour - associated macrophages"],
}  # fmt: skip
HALLMARK_SUBJECTS = [
    "Overexpression of {G}", "Loss of {G}", "Treatment with {D}", "The {G} mutation",
    "Silencing of {G}", "Exposure to {D}",
]  # fmt: skip
HALLMARK_CONTEXT = {
    "G": ["HIF - 1alpha", "STAT3", "PTEN", "SOX2", "c - Myc", "BRAF", "Notch1", "survivin"],
    "D": ["cisplatin", "curcumin", "metformin", "resveratrol", "doxorubicin", "arsenic trioxide"],
    "C": ["HeLa cells", "MCF - 7 cells", "A549 cells", "HepG2 cells", "glioma cells",
          "colorectal cancer xenografts"],
}  # fmt: skip
BACKGROUND_SENTENCES = [
    "Cancer remains a leading cause of death worldwide .",
    "The underlying molecular mechanisms are poorly understood .",
    "Cells were cultured in RPMI - 1640 medium supplemented with 10 % fetal bovine serum .",
    "Protein levels were measured by western blotting .",
    "Statistical analysis was performed with a two - tailed t test .",
    "We therefore investigated the role of {G} in {C} .",
    "These findings were confirmed in an independent cohort of {N} patients .",
    "Further studies are needed to clarify its clinical relevance .",
]


def _fill(rng: random.Random, text: str) -> str:
    return _fill_slots(rng, text, HALLMARK_CONTEXT).replace("{N}", str(rng.randint(40, 900)))


def hallmark_sentence(rng: random.Random) -> tuple[str, list[int]]:
    """A tokenised sentence and the indices of the hallmarks it states: none (half of them:
    HoC's sentences are mostly unlabelled), one, or two."""
    n = rng.choices([0, 1, 2], weights=[5, 4, 1])[0]
    if n == 0:
        return _fill(rng, rng.choice(BACKGROUND_SENTENCES)), []
    names = list(HALLMARKS)
    picked = sorted(rng.sample(range(len(names)), n))
    cues = " and ".join(rng.choice(HALLMARKS[names[k]]) for k in picked)
    subject = rng.choice(HALLMARK_SUBJECTS)
    return _fill(rng, f"{subject} {cues} in {{C}} ."), picked


def _multilabel_rows(rng: random.Random, split: str, n: int) -> Iterator[str]:
    """n abstracts of 4-6 `labels sentence index` rows, labels as `k_v` cells."""
    for pmid in _pmids(rng, split, n):
        for s in range(rng.randint(4, 6)):
            text, present = hallmark_sentence(rng)
            cell = ",".join(f"{k}_{int(k in present)}" for k in range(len(HALLMARKS)))
            yield f"{cell}\t{text}\t{pmid}_s{s}\n"


@_corpus(
    MULTILABEL_CORPUS,
    "multilabel",
    format="tsv",
    splits=MULTILABEL_FILES,
    fields={"id": "index", "text": "sentence"},
    labels=list(HALLMARKS),
    document_id=r"^(.+)_s\d+$",
)
def write_demo_multilabel(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 60,
    n_validation: int = 25,
    n_test: int = 25,
) -> dict[str, Path]:
    """Write train.tsv / dev.tsv / test.tsv as BLURB ships HoC: a header `labels sentence
    index`, labels as `0_v,...,9_v` (hallmark k present iff v = 1), sentence ids `PMID_sN`.
    `n_*` counts abstracts (4-6 sentences each); PMIDs are unique across splits."""
    sizes = _split_sizes(n_train, n_validation, n_test)
    header = "labels\tsentence\tindex\n"
    return _write_splits(
        out_dir, MULTILABEL_FILES, header, "multilabel", seed, sizes, _multilabel_rows
    )


# --- entry points: the registry's lookups and the CLI ---


def task_config(task_type: str, path: str = "") -> dict:
    """The `tasks:` entry that reads the demo corpus of `task_type` (written by its
    `write_demo_*`) from `path`: one definition for tests and benchmarks."""
    corpus = next(c for c in CORPORA.values() if c["type"] == task_type)
    return {"type": corpus["type"], "path": path, **copy.deepcopy(corpus["config"])}


def write_corpus(kind: str, out_dir: str | Path, **options: int) -> dict[str, Path]:
    """Write the demo corpus `kind` (a key of CORPORA) into `out_dir`."""
    return CORPORA[kind]["writer"](out_dir, **options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bioprobe.data.demo", description="Write a deterministic demo corpus."
    )
    parser.add_argument("kind", choices=sorted(CORPORA))
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-validation", type=int, default=150)
    parser.add_argument("--n-test", type=int, default=150)
    args = parser.parse_args(argv)
    paths = write_corpus(
        args.kind,
        args.out_dir,
        seed=args.seed,
        n_train=args.n_train,
        n_validation=args.n_validation,
        n_test=args.n_test,
    )
    for split, path in paths.items():
        print(f"{split}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
