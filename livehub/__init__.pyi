"""Types of the public names of ``livehub`` (imported lazily by ``__init__.py``)."""

from livehub.client import AsyncClient as AsyncClient
from livehub.client import Client as Client
from livehub.embedded import Hub as Hub
from livehub.errors import LivehubError as LivehubError
from livehub.errors import Unavailable as Unavailable
from livehub.results import History as History
from livehub.results import Member as Member
from livehub.results import Message as Message
from livehub.results import Published as Published

__version__: str
__all__: list[str]
