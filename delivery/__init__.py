"""Loss-free, exactly-once delivery to the national 12315 platform through a transactional outbox."""
