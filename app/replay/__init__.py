"""Replay a finished dosing session against another protocol version ("what would have fired").

The service builds the session's snapshot from the database, runs the rules engine's ``replay``
under the target version and under the version the session ran under, and compares the two.
It writes nothing to trial data and opens no alert; it leaves one audit record per replay.
"""
