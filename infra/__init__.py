"""The CDK app (AWS CDK in Python) that deploys the route table and handlers of functions/.

It reads functions/routes.json, functions/tables.json and the setting names of
functions/collab/settings.py (stdlib only), and never imports a runtime library (pycrdt,
redis, boto3-based code): the package directory goes on sys.path for that one module.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.append(str(FUNCTIONS_DIR))
