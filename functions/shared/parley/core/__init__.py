"""Cross-cutting foundations every layer may use: the API resolver and error mapping, configuration,
errors, authentication, observability, AWS clients, ids and the base API model."""
