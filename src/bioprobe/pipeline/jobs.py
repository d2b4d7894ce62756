"""The context of one job: which task and model it works on, where that model lives, its seed
and its attempt. Built once where a job starts (`bioprobe.pipeline.smk_support.job_context`), so the
location that `rules/common.smk` planned is the only one the library sees."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bioprobe.data.task_data import TaskData
from bioprobe.errors import BioprobeError
from bioprobe.models import ModelSpec, check_max_length


@dataclass(frozen=True)
class JobContext:
    #: the prepared task directory (`prepare_task`'s output)
    task_dir: Path
    #: the resolved `models.<id>` entry; `spec.location` is what this job loads
    spec: ModelSpec
    seed: int
    #: the pretrained model that a fine-tuned run's adapters apply to (None: no adapters)
    base_location: str | None = None
    #: the Snakemake attempt: a retry after running out of memory uses smaller batches
    attempt: int = 1

    @property
    def location(self) -> str:
        if self.spec.location is None:
            raise BioprobeError(f"{self.spec.key}: the scratch model has not been built")
        return str(self.spec.location)

    def task(self) -> TaskData:
        return TaskData(self.task_dir)

    def check_max_length(self, max_length: int, location: str | None = None) -> None:
        """One error naming the keys that set `max_length` where it outgrows the positions of
        the model (at `location`, default the job's): past them the model fails at the first
        sentence that long."""
        check_max_length(self.spec, max_length, task=self.task_dir.name, location=location)


def job_at(
    task_dir: str | Path,
    spec: ModelSpec,
    seed: int,
    *,
    location: str | Path | None = None,
    base_location: str | Path | None = None,
    attempt: int = 1,
) -> JobContext:
    """The context of a job that loads the model at `location` (default: the spec's own), the
    one place a spec gets the location a job works on (workflow jobs, notebooks, tests)."""
    if location is not None:
        spec = replace(spec, location=str(location))
    return JobContext(
        task_dir=Path(task_dir),
        spec=spec,
        seed=int(seed),
        base_location=None if base_location is None else str(base_location),
        attempt=int(attempt),
    )
