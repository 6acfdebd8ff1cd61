"""Site rules: a rule applied to a site, what checks and routines are planned on."""
