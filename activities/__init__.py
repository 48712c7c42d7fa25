"""Activities: the only code that talks to cloud APIs. One module per capability."""
