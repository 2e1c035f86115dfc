"""Importers turn a model (live module, TorchScript, builder function, pickle) into a Program."""

class ImportErrorQ(Exception):
    """The model cannot be lowered: names the file, node and op, and what to do."""
