"""washfin's kernel: event store, event contracts, relay, consumers, tenancy, settings and logging.

Shared by every service; no service imports another service's code.
"""
