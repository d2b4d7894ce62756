"""The default demo's data: a small, seeded sample of two real, CC BY 4.0 biomedical corpora,
shipped in the repository (`data/demo/`) with their licence and attribution.

- **NCBI-disease** (NER, `token<TAB>tag`, IOB2 `Disease` tags; Doğan, Leaman & Lu 2014), from
  the BIO files of cambridgeltl/MTL-Bioinformatics-2016 (CC BY 4.0).
- **GAD** (gene-disease relation, binary; Bravo et al. 2015), BLURB's TSVs of BioBERT's fold 1
  (Lee et al. 2020; CC BY 4.0), header `index<TAB>sentence<TAB>label`.

Each split of the sample is drawn from the same split of the source (train from train, and so
on), among the sentences of at most `max_words` whitespace words (short sentences keep the
demo fast and fit `max_length: 64` word pieces almost always; GAD's must also hold both
placeholders, `@GENE$` and `@DISEASE$`), stratified so that the sample
keeps the proportions of the eligible source sentences: for NCBI-disease those with and
without a Disease mention, for GAD each label. Selected sentences keep their source order and
their bytes (NCBI-disease blocks and GAD rows are copied verbatim, GAD's `index` included), so
every line can be traced back to the source.

Pure Python `random.Random` with string seeds: the same source and arguments give the same bytes
on every platform. CLI (what wrote `data/demo/`):

    python -m bioprobe.data.demo_sample ../shared/data data/demo
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from bioprobe.io import atomic_path

#: the corpora of the sample: source directory (under the shared data root), output directory,
#: file per split (source name -> sample name: the same)
NCBI = {"source": "ncbi_disease", "out": "ncbi_disease"}
NCBI_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}
GAD = {"source": "gad/blurb", "out": "gad"}
GAD_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
GAD_HEADER = "index\tsentence\tlabel"
#: the placeholders every sampled GAD sentence holds (a few source sentences lack one)
GAD_ENTITIES = ("@GENE$", "@DISEASE$")
LICENSE_NAME = "LICENSE-CC-BY-4.0.md"
#: the CC BY 4.0 text shipped with the shared NCBI-disease copy (the licence of both corpora)
LICENSE_SOURCE = Path("ncbi_disease") / LICENSE_NAME

#: sentences per split of each corpus in the shipped sample
DEFAULT_COUNTS = {
    "ncbi_disease": {"train": 400, "validation": 100, "test": 100},
    "gad": {"train": 400, "validation": 100, "test": 100},
}
DEFAULT_MAX_WORDS = 40
DEFAULT_SEED = 0


def _stratified(
    rng: random.Random, items: Sequence, n: int, stratum: Callable[[object], str]
) -> list[int]:
    """Indices of `n` of `items`, each stratum's share as in `items` (largest remainders), in
    their original order."""
    if n > len(items):
        raise ValueError(f"asked for {n} sentences, only {len(items)} are eligible")
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(stratum(item), []).append(i)
    keys = sorted(groups)
    exact = {k: n * len(groups[k]) / len(items) for k in keys}
    take = {k: int(exact[k]) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - take[k]), k))
    for k in by_remainder[: n - sum(take.values())]:
        take[k] += 1
    chosen = [i for k in keys for i in rng.sample(groups[k], take[k])]
    return sorted(chosen)


def ncbi_blocks(path: Path) -> list[list[str]]:
    """The sentences of a BIO TSV file, each the list of its `token<TAB>tag` lines."""
    blocks: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _has_mention(block: list[str]) -> str:
    return "mention" if any(line.split("\t")[1].startswith("B-") for line in block) else "none"


def sample_ncbi(source: Path, n: int, max_words: int, seed: int, split: str) -> str:
    """`n` sentences of the BIO TSV file `source` with at most `max_words` tokens, as text."""
    eligible = [b for b in ncbi_blocks(source) if len(b) <= max_words]
    rng = random.Random(f"bioprobe-demo-sample:ncbi_disease:{seed}:{split}")
    chosen = _stratified(rng, eligible, n, _has_mention)
    return "\n".join("".join(f"{line}\n" for line in eligible[i]) for i in chosen)


def gad_rows(path: Path) -> list[str]:
    """The data rows of a BLURB GAD TSV (its header checked and left out)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != GAD_HEADER:
        raise ValueError(f"{path}: expected the header {GAD_HEADER!r}")
    return [line for line in lines[1:] if line.strip()]


def _short_with_both_entities(row: str, max_words: int) -> bool:
    sentence = row.split("\t")[1]
    return len(sentence.split()) <= max_words and all(e in sentence for e in GAD_ENTITIES)


def sample_gad(source: Path, n: int, max_words: int, seed: int, split: str) -> str:
    """`n` rows of the GAD TSV `source` whose sentence has at most `max_words` words and both
    placeholders, as text (with the header)."""
    eligible = [r for r in gad_rows(source) if _short_with_both_entities(r, max_words)]
    rng = random.Random(f"bioprobe-demo-sample:gad:{seed}:{split}")
    chosen = _stratified(rng, eligible, n, lambda row: row.rsplit("\t", 1)[1])
    return "".join(f"{line}\n" for line in [GAD_HEADER, *(eligible[i] for i in chosen)])


def write_sample(
    shared: str | Path,
    out: str | Path,
    counts: dict[str, dict[str, int]] | None = None,
    max_words: int = DEFAULT_MAX_WORDS,
    seed: int = DEFAULT_SEED,
) -> dict[str, Path]:
    """Write `out/ncbi_disease/{train,devel,test}.tsv` and `out/gad/{train,dev,test}.tsv`, each
    with a copy of the CC BY 4.0 licence, drawn from the shared data root `shared`; return the
    path of every file written (the README and ATTRIBUTION files are written by hand)."""
    shared, out = Path(shared), Path(out)
    counts = counts or DEFAULT_COUNTS
    written = {}
    corpora = (
        (NCBI, NCBI_FILES, sample_ncbi, counts["ncbi_disease"]),
        (GAD, GAD_FILES, sample_gad, counts["gad"]),
    )
    for corpus, files, sample, n in corpora:
        for split, name in files.items():
            text = sample(shared / corpus["source"] / name, n[split], max_words, seed, split)
            path = out / corpus["out"] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            written[f"{corpus['out']}/{name}"] = path
        licence = out / corpus["out"] / LICENSE_NAME
        shutil.copyfile(shared / LICENSE_SOURCE, licence)
        written[f"{corpus['out']}/{LICENSE_NAME}"] = licence
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shared", help="the shared data root (holds ncbi_disease/ and gad/)")
    parser.add_argument("out", help="output directory (data/demo)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS)
    for corpus, splits in DEFAULT_COUNTS.items():
        for split, n in splits.items():
            parser.add_argument(f"--{corpus.replace('_', '-')}-{split}", type=int, default=n)
    args = parser.parse_args(argv)
    counts = {
        corpus: {split: getattr(args, f"{corpus}_{split}") for split in splits}
        for corpus, splits in DEFAULT_COUNTS.items()
    }
    written = write_sample(args.shared, args.out, counts, args.max_words, args.seed)
    for name, path in written.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
