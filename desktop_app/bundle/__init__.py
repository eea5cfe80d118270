"""The model bundle: the one definition of what training exports and the app loads."""
