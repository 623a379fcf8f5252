"""Chat transports behind one interface (transport.py): WhatsApp, the sandbox's client, a fake for tests."""
