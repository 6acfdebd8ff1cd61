"""Provider links: a scoped, expiring, revocable link through which an intervention's assigned
company contact reads it, checks in with the PIN, executes and uploads the signature."""
