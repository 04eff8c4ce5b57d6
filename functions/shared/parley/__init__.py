"""Parley's shared layer: models, configuration, data access, AI and speech providers.

Nothing in this package reads ``os.environ`` or builds AWS clients at import time: handlers
validate their environment once (``parley.core.config``) and pass clients in (``parley.core.clients``).
"""
