"""CDISC SDTM (SDTMIG 3.4) datasets built from Vigil's records: one metadata table
(``metadata``), row builders that stream from the database (``rows``), writers per format
(``writers``, ``xpt``) and the endpoints (``endpoints``). See docs/exports.md."""
