"""mcpvisor: an OTP-style supervised runtime on trio for MCP servers.

This module is a thin facade; the code lives in ``mcpvisor.runtime``, ``mcpvisor.supervisors`` and
``mcpvisor.backends``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
