"""``ServedServer``: what the supervised runtime needs of the server it runs.

``Server`` (the authoring API) is one. The runtime itself calls only ``initialize_result`` (a session's
handshake); everything else goes through ``handle_request``, which gets the server as it was given
(``start_server(handle_request=...)`` lets tests and custom protocols run lighter ones). The optional
``on_list_changed`` / ``on_resource_updated`` hooks are looked up when present.
"""

from __future__ import annotations

from typing import Any, Protocol


class ServedServer(Protocol):
    def initialize_result(self, protocol_version: str) -> dict[str, Any]: ...
