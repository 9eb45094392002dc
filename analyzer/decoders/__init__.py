"""Protocol decoders: sans-IO, bytes in, typed events out. They state facts and never judge."""
