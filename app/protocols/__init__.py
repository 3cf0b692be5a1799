"""Protocol files: the YAML format, its schema and the fail-closed loader."""
