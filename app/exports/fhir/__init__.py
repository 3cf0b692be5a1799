"""FHIR R4 bulk data: one NDJSON file per resource type of a study (docs/exports.md).

``resources`` turns Vigil's records into FHIR resources (pure functions), ``stream`` reads a
study from the database one row at a time and yields them, ``endpoints`` serves them.
"""
