"""Full fine-tuning: every weight trains and the whole model is saved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bioprobe.methods.base import MethodKind


class Full(MethodKind):
    name = "full"

    def load_trained(
        self,
        location: str,
        task_type: str,
        labels: Sequence[str],
        method: Mapping[str, Any],
        *,
        spec: Any,
        base_location: str | None = None,
        **load_kwargs: Any,
    ) -> tuple[Any, int]:
        """The saved model itself (it needs no base)."""
        from bioprobe.models import load_model_for_task

        return load_model_for_task(location, task_type, labels, spec=spec, **load_kwargs), 0
