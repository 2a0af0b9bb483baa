"""graphrun's Python client: the gRPC stubs (graphrun.v1) and a friendly client on top."""
