"""The sanitation service's pure domain: no I/O, only state folded from events and decisions.

- ``settings``: a cooperative's thresholds (SNI checklist, capacity rule, desludging interval, IPLT tolerance)
- ``checklist``: the SNI 2398:2017 septic-tank checklist and the simpler checklists of the other job kinds
- ``contractor``: contractors, their certification, and their quality record
- ``job``: a construction job from order to handover, and afterwards its septic tank's desludging (LLTT)
- ``dates``: calendar arithmetic (anniversaries across leap years, months)
"""
