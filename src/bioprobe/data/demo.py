"""Deterministic, biomedical-looking demo corpora written by the project (no download, no licence).

- NER (`write_demo_ner`): abstract- and case-report-style sentences in BIO TSV with `Disease` and
  `Chemical` mentions, many of them multi-word (so I- tags occur). Part of each lexicon is seen
  only in train and part only in validation/test, so the task needs context, not memorisation.
- NLI (`write_demo_nli`): MedNLI-format premise/hypothesis pairs from clinical templates,
  balanced over entailment / contradiction / neutral. The label follows from comparing the two
  sentences (same finding? same polarity? antonym?), while the hypothesis alone carries no
  information: its finding, polarity and wording are drawn independently of the label.

Pure Python `random.Random` with string seeds, so the bytes are identical across runs, platforms
and Python hash seeds. CLI: `python -m bioprobe.data.demo ner|nli OUT_DIR [--seed N]`.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Sequence
from pathlib import Path

from bioprobe.io import atomic_path
from bioprobe.tasks.ner import NER
from bioprobe.tasks.pair import Pair

NER_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
NLI_FILES = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
NLI_LABELS = ("entailment", "contradiction", "neutral")
NER_CORPUS, NLI_CORPUS = NER.name, "nli"


def task_config(task_type: str, path: str = "") -> dict:
    """The `tasks:` entry that reads the demo corpus of `task_type` (written by
    `write_demo_ner` or `write_demo_nli`) from `path`: one definition for tests and benchmarks."""
    corpus = next(c for c in CORPORA.values() if c["type"] == task_type)
    return {"type": corpus["type"], "path": path, **copy.deepcopy(corpus["config"])}


# --- NER lexicons: shared by all splits, train only, validation/test only ---

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


def _lexicon(pools: dict[str, list[str]], split: str) -> list[str]:
    return pools["shared"] + pools["train" if split == "train" else "eval"]


def _entity(rng: random.Random, pool: list[str], used: set[str]) -> str:
    """A mention not used yet in this sentence (so {D} and {D2} differ)."""
    choice = rng.choice([m for m in pool if m not in used])
    used.add(choice)
    return choice


def ner_sentence(rng: random.Random, split: str) -> tuple[list[str], list[str]]:
    """One sentence from a random template: (tokens, IOB2 tags)."""
    tokens: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for piece in rng.choice(NER_TEMPLATES).split():
        slot = piece[1:-1] if piece.startswith("{") and piece.endswith("}") else None
        if slot in ("D", "D2", "C", "C2"):
            kind, pools = ("Disease", DISEASES) if slot[0] == "D" else ("Chemical", CHEMICALS)
            words = _entity(rng, _lexicon(pools, split), used).split()
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        elif slot is not None:
            words = _filler(rng, slot).split()
            tokens += words
            tags += ["O"] * len(words)
        else:
            tokens.append(piece)
            tags.append("O")
    tokens[0] = tokens[0][:1].upper() + tokens[0][1:]
    return tokens, tags


def _filler(rng: random.Random, slot: str) -> str:
    if slot in FILLERS:
        return rng.choice(FILLERS[slot])
    low, high = {"N": (3, 60), "M": (80, 900), "AGE": (18, 89), "DOSE": (5, 500)}[slot]
    return str(rng.randint(low, high))


def _split_sizes(n_train: int, n_validation: int, n_test: int) -> dict[str, int]:
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    for split, n in sizes.items():
        if n < 1:
            raise ValueError(f"n_{split} must be at least 1, got {n}")
    return sizes


def write_demo_ner(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 400,
    n_validation: int = 150,
    n_test: int = 150,
) -> dict[str, Path]:
    """Write train.tsv / devel.tsv / test.tsv (BIO TSV); return the path of each split."""
    out_dir = Path(out_dir)
    paths = {}
    for split, n in _split_sizes(n_train, n_validation, n_test).items():
        rng = random.Random(f"bioprobe-demo-ner:{seed}:{split}")
        blocks = []
        for _ in range(n):
            tokens, tags = ner_sentence(rng, split)
            blocks.append("".join(f"{tok}\t{tag}\n" for tok, tag in zip(tokens, tags, strict=True)))
        paths[split] = _write_text(out_dir / NER_FILES[split], "\n".join(blocks))
    return paths


# --- NLI: a finding (present/absent) or a measurement (high/low), stated in the premise ---

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
        "SUBJ_POSS_UPPER": poss[:1].upper() + poss[1:],
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
    labels = [NLI_LABELS[i % len(NLI_LABELS)] for i in range(n)]
    rng.shuffle(labels)
    return labels


def write_demo_nli(
    out_dir: str | Path,
    seed: int = 0,
    n_train: int = 400,
    n_validation: int = 150,
    n_test: int = 150,
) -> dict[str, Path]:
    """Write train.jsonl / dev.jsonl / test.jsonl (MedNLI format); return the path of each split."""
    out_dir = Path(out_dir)
    paths = {}
    for split, n in _split_sizes(n_train, n_validation, n_test).items():
        rng = random.Random(f"bioprobe-demo-nli:{seed}:{split}")
        lines = []
        for index, label in enumerate(balanced_labels(rng, n)):
            premise, hypothesis = nli_pair(rng, label)
            row = {
                "gold_label": label,
                "pairID": f"demo-{split}-{index:05d}",
                "sentence1": premise,
                "sentence2": hypothesis,
            }
            lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        paths[split] = _write_text(out_dir / NLI_FILES[split], "".join(lines))
    return paths


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


#: the demo corpora by name (the CLI's and the demo rules' `kind`): their task type, writer
#: and the rest of their `tasks:` entry
CORPORA = {
    NER_CORPUS: {
        "type": NER.name,
        "writer": write_demo_ner,
        "config": {"format": "bio-tsv", "splits": NER_FILES},
    },
    NLI_CORPUS: {
        "type": Pair.name,
        "writer": write_demo_nli,
        "config": {
            "format": "pairs-jsonl",
            "splits": NLI_FILES,
            "fields": {
                "id": "pairID",
                "text_a": "sentence1",
                "text_b": "sentence2",
                "label": "gold_label",
            },
        },
    },
}


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
