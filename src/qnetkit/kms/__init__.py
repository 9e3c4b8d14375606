"""Key management: an ETSI GS QKD 014 key manager (KME).

Stores and serves bytes; knows nothing of photons or fibers (see docs/architecture.md).
"""
