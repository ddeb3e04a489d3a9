"""The exchange: directory, signing, transports, router, register, audit, nodes."""
