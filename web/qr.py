"""QR codes drawn for the panel's WhatsApp page (the payload comes from the gateway's state)."""

from __future__ import annotations

import io

import segno


def qr_svg(payload: str, scale: int = 5) -> bytes:
    """A QR code as an SVG document."""
    buffer = io.BytesIO()
    segno.make_qr(payload).save(buffer, kind="svg", scale=scale, border=2, xmldecl=True)
    return buffer.getvalue()
