"""`python -m graphrun_server`: serve with settings from GRAPHRUN_* environment variables."""

from .app import Settings, serve

serve(Settings.from_env())
