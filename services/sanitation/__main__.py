from services.sanitation.app import SERVICE, build_runtime, create_app
from services.sanitation.settings import SanitationSettings
from shared.serve import main

if __name__ == "__main__":
    main(SERVICE, SanitationSettings, create_app, build_runtime)
