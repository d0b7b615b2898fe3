"""mcpvisor.runtime.transports: stdio, Streamable HTTP and in-memory drivers of a ``ServerPort``."""
