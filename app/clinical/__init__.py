"""Clinical vocabulary with no database and no web code: the vital-sign measures Vigil knows and
the C-SSRS screen. The protocol schema, the rules engine, the services and the exports read it."""
