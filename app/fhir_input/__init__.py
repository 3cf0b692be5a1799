"""FHIR R4 input: vital-signs Observations and Bundles of them from bedside devices, stored as
Vigil readings (app/fhir_input/endpoints.py)."""
