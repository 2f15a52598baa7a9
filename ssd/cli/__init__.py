"""The command line, ``python -m ssd``: one module per command, on the same library calls as the app."""
