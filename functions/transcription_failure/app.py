"""The transcription workflow's failure task: record a reason a person can act on.

Raises named exceptions (parley.speech.transcription) that statemachines/transcription.asl.json catches.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.core.config import TranscriptionStepsEnv
from parley.core.observability import task_handler
from parley.speech.transcription.steps import steps_from

ENV = TranscriptionStepsEnv.load(os.environ)


@task_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return steps_from(ENV).record_failure(event)
