"""The core every feature builds on; it imports no feature."""
