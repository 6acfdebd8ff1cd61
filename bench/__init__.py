"""The benchmark harness of the interventions service (issue 4): data, load, floor, report."""
