"""`hello` -> `hello python`; any other body goes on unchanged (status 0)."""

import os
import sys

# The mini SDK lives with the header checker example.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "plugin_filter", "python"))

from mosn_plugin import Response, serve  # noqa: E402


def call(request):
    if request.body != b"hello":
        return Response(status=0)
    response = Response(status=200, body=b"hello python")
    response.header["content-type"] = "text/plain"
    return response


if __name__ == "__main__":
    serve(call)
