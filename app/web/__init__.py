"""The web client for coordinators and clinicians: server-rendered pages under ``/`` (the API
stays under ``/api/v1``), enhanced with htmx and a live chart where JavaScript runs.

Its routes use the API's own dependencies (``Authorize``, the scoped loaders) and services, so a
page shows and changes only what the same caller could through the API."""
