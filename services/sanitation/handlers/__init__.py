"""Command and query handlers: load the stream, decide with the pure domain, append with the expected
version (read tables written in the same transaction). One module per resource."""
