"""Development tools beside the product: a private real Asterisk and SIP phones for tests
and benchmarks. Nothing in the product imports this package."""
