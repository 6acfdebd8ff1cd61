"""Integrations with other systems: calendar feeds (``feeds``: calendar apps subscribe to a
secret URL and read the interventions of a user, a site or a company contact as RFC 5545
events), webhooks (``webhooks``), provider links
(``provider_links``: a provider without an account acts on one intervention through a link)."""
