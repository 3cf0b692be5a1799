"""`python -m app.cli`: the `vigil` command."""

from app.cli import main

main()
