"""The reference data endpoints (``/sites/v1/rs``, ``/rules/v1/rs``…): one router per
resource package, in the order the OpenAPI document lists them. Profiles, the
organisation's members, are in ``organizations``."""

from __future__ import annotations

from interventions.references.anomalies.router import router as anomalies
from interventions.references.companies.router import router as companies
from interventions.references.contacts.router import router as contacts
from interventions.references.routines.router import router as routines
from interventions.references.rules.router import router as rules
from interventions.references.site_rules.router import router as site_rules
from interventions.references.sites.router import router as sites

routers = [sites, rules, site_rules, routines, companies, contacts, anomalies]
