"""The project's own systems wrapped as systems under test for the sender and receiver kits: they speak to the kit
only through the configuration file it writes, AMQP 0-9-1, JWS and the standard's JSON, as a vendor's would."""
