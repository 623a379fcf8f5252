"""The WhatsApp transport on neonize 0.5.2 (whatsmeow underneath).

Nothing here imports neonize at package import: `pairing`, `control` and `calls` are pure, and
`convert`, `outbound`, `ops`, `client` and `transport` import it only when the GatewayActor
builds the transport, because importing neonize loads its Go library and starts Go threads in
that process.
"""
