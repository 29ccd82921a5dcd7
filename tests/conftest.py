"""Make the collection importable as ansible_collections.keneyapp.deploy in tests."""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, ".collections"), os.path.join(ROOT, "tests", "lab"),
             os.path.join(ROOT, "examples", "keneyapp", "app")):
    if path not in sys.path:
        sys.path.insert(0, path)
