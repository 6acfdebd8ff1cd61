"""Sites: the buildings, or parts of one, an organisation keeps a register for."""
