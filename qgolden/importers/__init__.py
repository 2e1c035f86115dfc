"""Importers turn a model (live module, TorchScript, builder function, pickle) into a Program."""
from ..errors import UserError


class ImportErrorQ(UserError):
    """The model cannot be lowered: names the file, node and op, and what to do."""
