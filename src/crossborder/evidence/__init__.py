"""Evidence: files received or sent, with a chain of custody that holds up in court.

- ``storage``: a content-addressed blob store outside the database (SHA-256 computed while the
  bytes arrive; nothing half-written ever becomes visible).
- ``models`` / ``service``: attachment rows and their append-only custody events, each written
  with its audit event in one transaction.
- ``package``: signed export packages (ZIP + manifest + Ed25519 signature) that anyone can
  verify offline with ``crossborder evidence verify``.
"""
