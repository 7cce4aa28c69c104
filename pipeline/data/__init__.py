"""The data layer: the file contract and ingest, the examples (rounds), the model matrix, the demo generator."""
