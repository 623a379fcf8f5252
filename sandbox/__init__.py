"""The sandbox: a local WhatsApp-like chat server for demos, training and tests (`python -m sandbox`).

A separate app: the bot reaches it only over HTTP and a WebSocket, through gateway/sandbox/transport.py.
"""
