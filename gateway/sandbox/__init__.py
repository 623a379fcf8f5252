"""The sandbox: a local WhatsApp-like chat server (`python -m gateway.sandbox`) and the transport to it."""
