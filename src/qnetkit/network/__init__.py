"""Network layer: topologies from YAML, trusted-node relay, routing, faults, monitoring, the
network digital twin. Knows nothing of HTTP (see docs/architecture.md)."""
