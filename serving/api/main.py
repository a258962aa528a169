"""The ASGI app uvicorn serves (`linli serve api` sets where it reads from)."""

import os
from pathlib import Path

from linli.settings import get_settings
from serving.api.app import create_app

_data = get_settings().data_dir
app = create_app(Path(os.environ.get("LINLI_API_WAREHOUSE", _data / "warehouse")), Path(os.environ.get("LINLI_API_STATE", _data / "api")))
