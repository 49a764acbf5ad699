from services.members.app import SERVICE, build_runtime, create_app
from services.members.settings import MembersSettings
from shared.serve import main

if __name__ == "__main__":
    main(SERVICE, MembersSettings, create_app, build_runtime)
