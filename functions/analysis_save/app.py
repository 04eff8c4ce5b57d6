"""Analysis workflow, step 3: save the report on the session, if this run still owns it.

Returns the ``AnalysisCompleted`` event's detail, which the state machine publishes itself.
``AnalysisSuperseded`` when a newer run (or the session's deletion) took the item over.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.analysis.report import AnalysisReport
from parley.analysis.service import Analyses, StartInput
from parley.core import clients
from parley.core.config import AnalysisStepsEnv
from parley.core.observability import logger, task_handler
from parley.data.store import Store

ENV = AnalysisStepsEnv.load(os.environ)


class SaveInput(StartInput):
    report: AnalysisReport


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = SaveInput.model_validate(event)
    logger.append_keys(session_id=task.session_id, execution=task.execution_name)
    detail = Analyses(Store(clients.table(ENV.table_name))).save(task, task.report)
    return detail.model_dump(mode="json", by_alias=True)
