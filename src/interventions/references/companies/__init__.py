"""Companies: the providers (verification bodies, works and maintenance, training bodies)."""
