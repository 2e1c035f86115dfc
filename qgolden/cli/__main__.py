"""`python -m qgolden.cli`."""
from . import main

main()
