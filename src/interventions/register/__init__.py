"""The safety register: the hash-chained journal, its checkpoints, the printable register."""
