"""Integrations: webhooks, calendar feeds, provider links."""
