"""The `tickwire` console script (`main`) and its subcommands' front ends: flags, settings files
and environment variables (`config`, from the declarations in `serve_settings`, each read by
`setting`), then a call into the server, the client or the simulators.

Nothing imports a CLI module but the CLI modules themselves.
"""
