"""Instruction tuning (BioInstruct-style): instruction sets, the demo set, supervised fine-tuning.

- :mod:`~bioprobe.instructions.data`: Alpaca-style records (instruction, optional input,
  output) read from ``json``, ``jsonl`` or ``hf`` sources, validated, subsampled like a
  training split;
- :mod:`~bioprobe.instructions.demo`: the offline demo set;
- :mod:`~bioprobe.instructions.sft`: the training itself (loss on the response tokens only,
  adapters merged, saved as a pretrained checkpoint). It imports torch and transformers:
  import it where it is used; this package imports nothing heavy (Snakemake plans with it).
"""

from bioprobe.instructions.data import (
    DEFAULT_FIELDS,
    FORMATS,
    instruction_order,
    read_instruction_subset,
    read_instructions,
    subsample,
    write_instruction_subsets,
)

__all__ = [
    "DEFAULT_FIELDS",
    "DEMO_FILE",
    "FORMATS",
    "instruction_order",
    "read_instruction_subset",
    "read_instructions",
    "subsample",
    "write_demo_instructions",
    "write_instruction_subsets",
]


def __getattr__(name: str):
    # demo is imported lazily so `python -m bioprobe.instructions.demo` does not import it twice
    if name in ("DEMO_FILE", "write_demo_instructions"):
        from bioprobe.instructions import demo

        return getattr(demo, name)
    raise AttributeError(f"module 'bioprobe.instructions' has no attribute {name!r}")
