"""The console's pages, one module per page group (overview, messages, transmissions, ...)."""
