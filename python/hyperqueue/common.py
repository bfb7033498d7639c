from pathlib import Path
from typing import Union

GenericPath = Union[str, Path]
