"""`python -m emocli`."""

from .cli import main

main()
