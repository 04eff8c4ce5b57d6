"""Analysis workflow, step 2: the model's structured CAFP judgement, quotes checked.

Quota is checked before the model is called and one usage event is published per model call
(``MeteredProvider``); invalid output gets one retry inside this step. Both calls take their time
from this invocation's own limit (the Lambda context), so the step answers before it is killed.
Named errors for the ASL: ``ProviderError`` (retried there), ``ProviderMisconfigured`` (the
deployment's model setting: not retried), ``InvalidModelOutput``, ``ModelRefused``, ``QuotaExceeded``,
``ProviderRejected``.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.ai.deadline import Deadline
from parley.ai.factory import build_provider, preload_sdk
from parley.ai.metering import MeteredProvider
from parley.ai.types import AiProvider
from parley.analysis.judge import Judge
from parley.analysis.metrics import Measurements
from parley.analysis.service import Analyses, StartInput
from parley.core import clients
from parley.core.config import AnalysisJudgeEnv
from parley.core.observability import logger, task_handler
from parley.data.store import Store
from parley.usage.publisher import publisher_from
from parley.usage.quota import guard_from

ENV = AnalysisJudgeEnv.load(os.environ)
preload_sdk(ENV)
MARGIN_SECONDS = 3.0  # kept back from the model calls to return the report before the Lambda's limit


class JudgeInput(StartInput):
    measurements: Measurements


def engine() -> AiProvider:
    return build_provider(ENV)


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = JudgeInput.model_validate(event)
    logger.append_keys(session_id=task.session_id, execution=task.execution_name)
    store = Store(clients.table(ENV.table_name))
    conversation = Analyses(store).conversation(task.owner, task.session_id)
    metered = MeteredProvider(engine(), owner=task.owner, product="tutor", operation="analysis",
                              publisher=publisher_from(ENV), quota=guard_from(ENV, store))
    deadline = Deadline.from_context(context, margin=MARGIN_SECONDS)
    report = Judge(metered, deadline=deadline).judge(conversation, task.measurements)
    logger.info("Judged", extra={"attempts": report.attempts, "engine": report.engine,
                                 "quotes_dropped": report.quote_check.dropped})
    return {"report": report.model_dump(mode="json", by_alias=True)}
