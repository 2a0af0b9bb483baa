"""gRPC servicers: thin translators between graphrun.v1 messages and the domain."""
