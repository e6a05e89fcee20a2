"""cnnbook: the small helper package of the book *Image recognition with CNNs*.

Importing :mod:`cnnbook` is cheap and has no side effects: it does not import
TensorFlow, seed random generators or touch matplotlib settings.  Import the
module you need (``from cnnbook import data``); the modules that use TensorFlow
import it themselves.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
