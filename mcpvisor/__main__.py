"""``python -m mcpvisor``: the ``mcpvisor`` command."""

from mcpvisor.cli import main

main()
