"""The ASGI app uvicorn serves (`linli serve api` sets where it reads from)."""

import gc
import logging
import os
import sys
from pathlib import Path

from linli.settings import get_settings
from serving.api.app import create_app

_data = get_settings().data_dir
app = create_app(Path(os.environ.get("LINLI_API_WAREHOUSE", _data / "warehouse")), Path(os.environ.get("LINLI_API_STATE", _data / "api")))

# One JSON line per request on stderr (uvicorn's own access log is off).
_requests = logging.StreamHandler(sys.stderr)
_requests.setFormatter(logging.Formatter("%(message)s"))
logging.getLogger("linli.api").addHandler(_requests)
logging.getLogger("linli.api").setLevel(os.environ.get("LINLI_API_LOG_LEVEL", "INFO"))

# Everything made at start-up lives as long as the process: out of the collector's sight, a full
# collection walks only what requests left behind instead of every module and model.
gc.freeze()
