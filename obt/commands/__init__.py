"""The application layer: commands, their handlers, and the repository behind them."""
