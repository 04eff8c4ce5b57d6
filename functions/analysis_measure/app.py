"""Analysis workflow, step 1: load the session's learner turns and transcripts, and measure them.

Loading and measuring are one step: the messages and word timings can exceed Step Functions'
256 KB state limit, so only the (small) measurements leave this function.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.ai import grammar
from parley.analysis.service import Analyses, StartInput
from parley.core import clients
from parley.core.config import AnalysisStepsEnv
from parley.core.observability import logger, task_handler
from parley.data.store import Store

ENV = AnalysisStepsEnv.load(os.environ)
if grammar.available():
    grammar.warm_up()  # Harper's linter (about a second to build) in the init phase, not in the first analysis


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = StartInput.model_validate(event)
    logger.append_keys(session_id=task.session_id, execution=task.execution_name)
    measured = Analyses(Store(clients.table(ENV.table_name))).measure(task.owner, task.session_id)
    return {"measurements": measured.model_dump(mode="json", by_alias=True)}
