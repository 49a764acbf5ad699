"""The pure core of the members service: no I/O here."""
