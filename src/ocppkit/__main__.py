"""``python -m ocppkit`` is the ``ocppkit`` command."""

from ocppkit.cli import main

main()
