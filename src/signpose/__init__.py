"""signpose: sign-language video datasets to pose datasets and trained recognisers."""

__version__ = "0.1.0"
