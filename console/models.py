"""The console keeps no data of its own: it reads and acts through the apps below it."""
