"""Built-in example models."""
