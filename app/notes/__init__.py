"""Therapist notes on a participant, a visit or a dosing session."""
