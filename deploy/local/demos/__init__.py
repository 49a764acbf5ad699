"""Each service's demo data, loaded through that service's public HTTP API by the run command
(``deploy/local/demo.py`` ``load_all_demo``) and by ``washfin demo load``: deployment tooling, not part of
any service (the import-linter contracts in pyproject.toml keep services free of it)."""
