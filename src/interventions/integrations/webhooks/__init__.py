"""Webhooks per organisation, signed per the Standard Webhooks specification (issue 12, item 4)."""
