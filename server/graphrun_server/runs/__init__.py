"""The run life cycle on one replica, one concern per module; `runner.GraphRunner` is its facade."""
