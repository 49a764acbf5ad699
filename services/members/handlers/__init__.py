"""Command and query handlers: load the stream, decide with the pure domain, append with the expected
version (and write the read tables in the same transaction). One module per resource."""

from services.members.handlers.members import get_member, register_member

__all__ = ["get_member", "register_member"]
