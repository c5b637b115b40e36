"""Federation: how nodes talk to each other.

Today it holds the node's own identity (``identity``): the Ed25519 key that signs what the node
says (envelopes later, evidence packages now) and the X25519 key that peers encrypt to. Peers
pin a node by the SHA-256 fingerprint of its signing key in the directory. Envelopes, the
outbox/inbox and relaying come later; federation knows nothing of requests or intelligence.
"""
