"""Shipped data files of the queues package (a package so that wheels include them)."""
