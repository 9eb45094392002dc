"""Renderers: results as plain data, then as text, JSON, HTML. No I/O here; the CLI writes."""
