"""Analysis workflow, the Catch path: mark the analysis failed with a reason a learner can read.

Only the analysis item changes; the session and its messages are never touched. A run that a
newer one superseded changes nothing.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from parley.analysis.service import Analyses, StartInput, failure_reason
from parley.core import clients
from parley.core.config import AnalysisStepsEnv
from parley.core.observability import logger, task_handler
from parley.data.store import Store

ENV = AnalysisStepsEnv.load(os.environ)


class CaughtError(BaseModel):
    """What a Catch with ``ResultPath: $.error`` puts in the state."""

    model_config = ConfigDict(extra="ignore")

    error: str = Field(alias="Error", min_length=1)
    cause: str | None = Field(None, alias="Cause")


class FailInput(StartInput):
    error: CaughtError


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = FailInput.model_validate(event)
    reason = failure_reason(task.error.error, task.error.cause)
    logger.warning("Analysis failed", extra={"session_id": task.session_id, "execution": task.execution_name,
                                             "error": task.error.error, "reason": reason})
    marked = Analyses(Store(clients.table(ENV.table_name))).fail(task, task.error.error, reason)
    return {"marked": marked, "error": task.error.error, "reason": reason}
