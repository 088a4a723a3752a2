"""The console: the pages a person uses in a browser (issue 15). Staff-only Django views that
read the same selectors and call the same services as the API; no rule lives here."""
