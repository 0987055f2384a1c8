"""Device actors: per-device stream state, hosted many to a Ray actor (``DeviceShard``)."""
