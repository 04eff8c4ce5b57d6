"""Usage metering: the usage event, prices, the quota and its reservations, the ledger, rate limits."""
