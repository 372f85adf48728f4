"""Subcommands of the ``em-eval`` CLI."""
