"""wxstream: WeChat Official Account callbacks in, AI replies out, over Kafka and Faust."""

import logging

logging.getLogger("wxstream").addHandler(logging.NullHandler())
