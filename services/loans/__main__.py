import sys

from services.loans.app import SERVICE, build_runtime, create_app
from services.loans.settings import LoansSettings
from shared.serve import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["import"]:
        # python -m services.loans import FILE --tenant T  (bulk import of a loan book)
        from services.loans.bulk_import import cli

        sys.exit(cli(sys.argv[2:]))
    main(SERVICE, LoansSettings, create_app, build_runtime)
