"""Rules: the regulatory obligations (checks and maintenance, training) sites are held to."""
