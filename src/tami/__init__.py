"""tami: low-light video enhancement by temporal adaptation of frozen image enhancers.

The package wraps a frozen image backbone (``tami.backbones``) with the TAMI temporal adapter
(``tami.adapter``) and provides data I/O, metrics, training and a streaming enhancer.
"""

__version__ = "0.1.0"
