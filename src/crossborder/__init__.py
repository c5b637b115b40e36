"""crossborder: the node an authority runs to take part in cross-border cooperation."""

__version__ = "0.1.0"
