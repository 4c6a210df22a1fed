"""seqrec: sequential recommenders trained with Cumulative Cross-Entropy, reproducibly."""
__version__ = "0.1.0"

from .config import TrainConfig  # noqa: E402
from .errors import SeqrecError  # noqa: E402

__all__ = ["TrainConfig", "SeqrecError", "__version__"]
