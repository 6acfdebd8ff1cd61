"""Integrations with other systems: webhooks, calendar feeds, provider links."""
