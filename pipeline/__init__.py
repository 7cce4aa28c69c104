"""Stage CLIs and shared plumbing of the DSG17 pipeline (config, data contract, I/O)."""
