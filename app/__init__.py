"""Vigil: session protocol and safety monitoring for psychedelic-assisted therapy trials."""
