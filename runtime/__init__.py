"""mcpvisor.runtime: actors, the MCP session actor, the server runtime, protocol and transports."""
