"""Python async client for the threadline WebSocket protocol.

    async with Client("ws://127.0.0.1:8000/ws", token) as c:
        tid = (await c.mutate("threads.create", {"title": "hi"}))["threadId"]
        async with c.subscribe("messages.list", {"threadId": tid}) as sub:
            async for value in sub:
                ...

It reconnects with capped exponential backoff, resubscribes, and resends
unanswered mutations with the same ids (the server runs each id once).
"""

from client._client import Client, MutationError, Subscription, SubscriptionError

__all__ = ["Client", "MutationError", "Subscription", "SubscriptionError"]
