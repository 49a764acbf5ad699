from services.loans.app import SERVICE, build_runtime, create_app
from services.loans.settings import LoansSettings
from shared.serve import main

if __name__ == "__main__":
    main(SERVICE, LoansSettings, create_app, build_runtime)
