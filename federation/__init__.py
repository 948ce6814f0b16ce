"""Federation on Flower: server and client apps, and the ``predis-fl`` command line."""
