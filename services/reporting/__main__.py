from services.reporting.app import SERVICE, build_runtime, create_app
from services.reporting.settings import ReportingSettings
from shared.serve import main

if __name__ == "__main__":
    main(SERVICE, ReportingSettings, create_app, build_runtime)
