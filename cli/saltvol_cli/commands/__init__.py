"""One module per ``saltvol`` subcommand; each exposes a click command named ``command``."""
