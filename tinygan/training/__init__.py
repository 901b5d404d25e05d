"""Training: the loop and its data position, the divergence guard, run folders and what a run records."""
