"""Electronic signatures (21 CFR 11.50, 11.70, 11.200) of adverse events, dosing-session
close-outs and therapist notes: re-authenticated, bound to a hash of the record signed, voided
when that record changes."""
