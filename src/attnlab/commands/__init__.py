"""What the ``attnlab`` subcommands run: one module per command, above the library's layers."""
