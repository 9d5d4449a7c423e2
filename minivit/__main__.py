"""`python -m minivit ...`: the same as the `minivit` command."""
import sys

from .cli import run

sys.exit(run())
