"""The register: the hash-chained journal, its signed checkpoints, verification and export."""
