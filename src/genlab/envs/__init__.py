"""Environments, every one a gymnasium.Env; `make_env("minatar:breakout")` builds them by name."""
