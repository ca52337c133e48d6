"""WHAT is benchmarked: the dataset registry, BIDS indexing, splits, fetching, synthetic data."""
