"""graphrun's server: runs LangGraph graphs behind the graphrun.v1 gRPC API."""
