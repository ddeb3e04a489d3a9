"""RabbitMQ: running a local node, the transport, and the topology and permissions from the directory."""
