"""Sponsor exports: data pulled out of Vigil in the formats sponsors' tools read (docs/exports.md).
``sdtm``: CDISC SDTM datasets as CSV, Dataset-JSON and SAS XPORT; ``fhir``: FHIR R4 bulk data
(NDJSON per resource type)."""
