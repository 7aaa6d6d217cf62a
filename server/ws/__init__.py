"""The WebSocket protocol (see PROTOCOL.md): frames, sessions, the endpoint."""
