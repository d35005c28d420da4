"""Command-line commands beside ``ocppkit csms`` (each a Typer function, one module per command).

They sit at the cli level of design.md's layers: they may import every layer below.
"""
