"""Data access: the one table (``store``), its keys, the cursor codec, and one repository per aggregate.

The only package that writes a DynamoDB expression."""
