"""Chat transports behind one interface (WhatsApp, sandbox, fake) and the pieces the gateway actor uses."""
