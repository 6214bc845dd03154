"""The gateway's HTTP entry: one router per part of the API (``auth``, ``workflows``, ``runs``, ``live``,
``records``, ``tenant_settings``, ``catalog``, ``tasks``, ``webhooks``), the builder's pages (``web``),
the request dependencies (``deps``) and the errors and body limits (``errors``). A route parses,
authorises, calls a use case (``service_layer``) and shapes the answer."""
