"""The sanitation service: contractors, construction with SNI inspection, scheduled desludging."""
