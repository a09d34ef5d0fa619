"""The database's life: migrations and install (migrate), the embedded server for development,
the in-app maintenance scheduler, and the demo tenant. Request code never imports from here."""
