"""A minimal MOSN/Mosaic plugin SDK for Python, on Debian's python3-grpcio and
python3-protobuf (no protoc, no pip).

MOSN's `proto.Request`/`proto.Response` messages are built at import time from a
descriptor written in code, so nothing is generated. `serve(handler)` starts the gRPC
server, prints the handshake line the host waits for, and exits when the host goes away
(stdin closes or the parent dies).

    from mosn_plugin import serve, Response

    def call(request):
        return Response(status=0)

    serve(call)
"""

import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _file_descriptor():
    fdp = descriptor_pb2.FileDescriptorProto(name="mosn_plugin.proto", package="proto", syntax="proto3")

    def message(name, last_field, last_type):
        m = fdp.message_type.add(name=name)
        for i, field in ((1, "header"), (2, "trailer")):
            entry = m.nested_type.add(name=field.capitalize() + "Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
            m.field.add(name=field, number=i, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                        type_name=".proto.%s.%sEntry" % (name, field.capitalize()))
        m.field.add(name="body", number=3, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
        m.field.add(name=last_field, number=4, type=last_type, label=_F.LABEL_OPTIONAL)

    message("Request", "type", _F.TYPE_STRING)
    message("Response", "status", _F.TYPE_INT32)
    return fdp


_messages = message_factory.GetMessages([_file_descriptor()])
Request = _messages["proto.Request"]
Response = _messages["proto.Response"]


def _watch_host(cleanup):
    """Exits when stdin reaches its end (Mosaic pipes it) or the parent dies."""
    parent = os.getppid()

    def stdin_eof():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        cleanup()
        os._exit(0)

    def parent_gone():
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                cleanup()
                os._exit(0)

    # Only a pipe's end means the host is gone: a go-plugin host (MOSN) may hand us
    # its own stdin, which can be /dev/null.
    try:
        mode = os.fstat(0).st_mode
        piped = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    except OSError:
        piped = False
    if piped:
        threading.Thread(target=stdin_eof, daemon=True).start()
    threading.Thread(target=parent_gone, daemon=True).start()


def serve(handler, workers=4):
    """Serves `handler(request) -> Response` until the host goes away."""
    if os.environ.get("MOSN_PLUGIN") != "ON":
        sys.stderr.write("This program is a Mosaic/MOSN plugin: the proxy starts it, "
                         "not a person (MOSN_PLUGIN=ON is not set).\n")
        sys.exit(1)

    def call(request, context):
        try:
            return handler(request)
        except Exception as err:  # MOSN's Go SDK returns the error as the call's status
            context.abort(grpc.StatusCode.UNKNOWN, str(err))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("proto.Plugin", {
        "Call": grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=Request.FromString,
            response_serializer=Response.SerializeToString,
        ),
    }),))

    socket_dir = None
    if os.environ.get("MOSAIC_PLUGIN_NETWORK", "unix") == "tcp":
        port = server.add_insecure_port("127.0.0.1:0")
        handshake = "1|1|tcp|127.0.0.1:%d|grpc" % port
    else:
        socket_dir = tempfile.mkdtemp(prefix="mosaic-plugin-",
                                      dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
        path = os.path.join(socket_dir, "plugin.sock")
        server.add_insecure_port("unix:" + path)
        handshake = "1|1|unix|%s|grpc" % path

    def cleanup():
        if socket_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)

    server.start()
    _watch_host(cleanup)
    sys.stdout.write(handshake + "\n")
    sys.stdout.flush()
    try:
        server.wait_for_termination()
    finally:
        cleanup()
