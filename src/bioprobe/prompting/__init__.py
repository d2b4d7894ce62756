"""Zero- and few-shot prompting: a method kind that trains nothing.

A ``prompting`` method asks a decoder or an encoder-decoder every validation and test example
as a prompt (`prompts`: instruction, demonstrations, question), scores the answers by rank
classification or reads generated mentions back onto the words (`schemes`, `mentions`), with
the batched engine of `scoring`; `run.evaluate_prompting` is a run. Nothing heavy is imported
here: the config check (`prompts.check_config`) runs at planning.
"""

from bioprobe.prompting.prompts import check_config

__all__ = ["check_config"]
