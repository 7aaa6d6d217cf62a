"""The web process: HTTP API, WebSocket sessions, live queries, the pages."""
