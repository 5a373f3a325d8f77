"""Terminal interfaces of initlab: the Textual app and the command line."""
