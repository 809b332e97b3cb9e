"""The model contract: framing and server (stdlib + numpy only), host-side client and messages.

Keep this file free of imports: the server is run from here by the local
engine and copied into images, where only the standard library and numpy exist.
"""
