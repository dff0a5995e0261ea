"""The WeChat Official Account callback protocol: pure, synchronous, no I/O.

Nothing in this package imports aiohttp, faust or any client; the ingress, the
outbound path and `wxstream decode` all build on it.
"""

from app.wechat.callback import CallbackCodec, CallbackQuery, Decoded, Mode
from app.wechat.errors import WeChatError

__all__ = ("CallbackCodec", "CallbackQuery", "Decoded", "Mode", "WeChatError")
