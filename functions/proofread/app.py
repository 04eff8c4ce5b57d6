"""POST /proofread: corrections with verified offsets, and the corrected text (seed 003)."""

from __future__ import annotations

import os

from parley.ai.factory import preload_sdk
from parley.core import clients
from parley.core.api import make_resolver, owner_of, rest_handler
from parley.core.config import ProofreadingEnv
from parley.data.store import Store
from parley.proofreading import service
from parley.proofreading.engine import Proofreader
from parley.proofreading.models import ProofreadRequest, ProofreadResult
from parley.usage.publisher import publisher_from

ENV = ProofreadingEnv.load(os.environ)
preload_sdk(ENV)  # the Anthropic SDK, in the init phase, only if this deployment calls it
app = make_resolver(cors_allow_origin=ENV.cors_allow_origin, max_body_bytes=ENV.max_body_bytes)


def proofreader() -> Proofreader:
    store = Store(clients.table(ENV.table_name))
    providers = service.metered_providers(ENV, store, publisher_from(ENV))
    return service.proofreader(ENV, store, clients.client("s3"), providers)


@app.post("/proofread", summary="Proofread Korean or English copy", tags=["Proofreading"])
def proofread(body: ProofreadRequest) -> ProofreadResult:
    context = app.lambda_context
    return proofreader().proofread(
        owner_of(app), text=body.text, prompt_id=body.prompt_id, conversation_id=body.conversation_id,
        remaining=lambda: context.get_remaining_time_in_millis() / 1000)


handler = rest_handler(app)
