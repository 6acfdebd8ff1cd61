"""Anomalies: what a check found wrong on a site; curative interventions repair them."""
