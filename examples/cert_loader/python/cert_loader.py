"""The certificate loader plugin in Python (MOSN's cert_loader demo): a more trusted
process than the proxy holds the certificate and key, and answers every call with the
JSON body {"cert_pem", "key_pem", "ca_pem"} that the `plugin` certificate provider
reads. `-d <dir>` names the folder holding server.crt, server.key and ca.crt; the files
are read on every call, so a replaced certificate is served from the next fetch."""

import argparse
import json
import os
import sys

# The mini SDK lives with the header checker example.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "plugin_filter", "python"))

from mosn_plugin import Response, serve  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="Mosaic certificate loader plugin")
    parser.add_argument("-d", "--dir", required=True,
                        help="folder with server.crt, server.key and ca.crt")
    args = parser.parse_args()

    def read(name):
        with open(os.path.join(args.dir, name), encoding="utf-8") as f:
            return f.read()

    def call(_request):
        try:
            body = json.dumps({
                "cert_pem": read("server.crt"),
                "key_pem": read("server.key"),
                "ca_pem": read("ca.crt"),
            }).encode("utf-8")
        except OSError as error:
            # MOSN's convention: a negative status refuses; the proxy logs our stderr.
            print("cert_loader: %s" % error, file=sys.stderr, flush=True)
            return Response(status=-1)
        response = Response(status=200, body=body)
        response.header["content-type"] = "application/json"
        return response

    serve(call)


if __name__ == "__main__":
    main()
