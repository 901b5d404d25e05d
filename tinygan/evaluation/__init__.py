"""What a model learned: the judge classifier and metrics, and every picture of its samples."""
