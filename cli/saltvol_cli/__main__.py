"""``python -m saltvol_cli``: the same as the ``saltvol`` console script."""

from __future__ import annotations

from .main import main

if __name__ == "__main__":
    main()
