"""``ghostcap export``: a capture's decoded messages in interchange formats other tools read."""
