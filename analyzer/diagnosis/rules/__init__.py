"""One rule per file, auto-discovered by ``analyzer.diagnosis.registry.discover``."""
