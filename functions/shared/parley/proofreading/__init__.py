"""The proofreading service (seed 003): prompts with reference files, proofreading with verified
offsets, conversation history, and the WebSocket protocol that streams answers.

    models         API models (camelCase JSON) and the model-output contract
    offsets        placing the model's corrections on the input: verify, repair or drop
    prompts        prompt and file CRUD, the system prompt and its size budget
    conversations  every exchange, stored per owner; list / read / delete
    engine         one proofreading or chat exchange against an AiProvider (validate, retry once)
    offline_rules  the offline engine's deterministic proofreader (local stack, tests)
    websocket      connections, frames under API Gateway's limits, streaming to a connection
"""
