"""The gateway's OpenAPI document, built from its routes without starting anything (no connection
is opened: the app is assembled, never run). The web app's TypeScript types are generated from it
(services/gateway/web/src/api/schema.d.ts, `npm run api-types`), and `make test` checks they are
current.

    python -m millrace_gateway.openapi_document > openapi.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from millrace_common.platform.secrets import new_key
from pydantic import SecretStr


def document() -> dict[str, Any]:
    from millrace_gateway.bootstrap import build
    from millrace_gateway.settings import GatewaySettings

    # Placeholders: building the app checks that they are set, and nothing is signed or sealed.
    placeholder = SecretStr("openapi-document-only-nothing-is-signed-with-it")
    settings = GatewaySettings(jwt_secret=placeholder, encryption_key=new_key())
    return build(settings).openapi()


def main() -> None:
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
