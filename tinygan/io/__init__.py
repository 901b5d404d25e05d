"""The base every layer may use: error types, safe files, memory checks, array files, checkpoints, PNG."""
