"""Reference data: what an organisation owns and its interventions name.

A package per resource (``sites``, ``rules``, ``site_rules``, ``routines``, ``companies``,
``contacts``, ``anomalies``), each with its router, service, repository and schemas; the shape
they share is written once (``resource``: the use cases, ``endpoints``: the HTTP API,
``paging``, ``fields``). ``repository`` holds the organisation-scoped look-ups other domains
use; ``models`` the tables; ``importer`` loads a file of them (SPEC §7).
"""
