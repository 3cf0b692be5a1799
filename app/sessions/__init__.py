"""Dosing sessions as the rules engine sees them, read from the database (snapshot.py)."""
