"""How each engine rounds and requantizes: small pure NumPy functions, one formula each."""
