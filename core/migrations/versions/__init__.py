"""One module per schema revision, in a single line from ``0001_initial``."""
