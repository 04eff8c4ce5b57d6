"""The one place that creates the Powertools logger, tracer and metrics.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables set in the
template's Globals, so every function logs and measures under the same names.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["logger", "metrics", "tracer"]
