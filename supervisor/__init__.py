"""kernelsvc supervisor: owns the public Jupyter sockets and a restartable worker.

This package never imports IPython, so the kernel's connection survives a broken
IPython install; ``tests/test_isolation.py`` enforces it.
"""

__version__ = "0.1.0"
