"""The header checker plugin in Python: `-c config.json` names the required headers
(name -> value); a request missing one, or with another value, gets status -1 (deny)."""

import argparse
import json

from mosn_plugin import Response, serve


def main():
    parser = argparse.ArgumentParser(description="Mosaic header checker plugin")
    parser.add_argument("-c", "--config", required=True, help="JSON map of required headers")
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as f:
        required = {str(k).lower(): str(v) for k, v in json.load(f).items()}

    def call(request):
        for name, value in required.items():
            if request.header.get(name) != value:
                return Response(status=-1)
        return Response(status=0)

    serve(call)


if __name__ == "__main__":
    main()
