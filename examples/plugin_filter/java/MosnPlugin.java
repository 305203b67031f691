import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.WireFormat;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A minimal MOSN/Mosaic plugin SDK for Java on Debian's libgrpc-java and protobuf-java,
 * without protoc: MOSN's proto.Request/proto.Response are encoded by hand and the
 * proto.Plugin/Call binding is a hand-made MethodDescriptor.
 *
 * The server listens on tcp 127.0.0.1 (a unix socket would need Netty's native epoll
 * transport), prints the handshake line, and exits when stdin reaches its end.
 */
public final class MosnPlugin {
  private MosnPlugin() {}

  /** MOSN's proto.Request. */
  public static final class Request {
    public final Map<String, String> header = new LinkedHashMap<>();
    public final Map<String, String> trailer = new LinkedHashMap<>();
    public byte[] body = new byte[0];
    public String type = "";
  }

  /** MOSN's proto.Response. */
  public static final class Response {
    public final Map<String, String> header = new LinkedHashMap<>();
    public final Map<String, String> trailer = new LinkedHashMap<>();
    public byte[] body = new byte[0];
    public int status;

    public Response status(int s) {
      status = s;
      return this;
    }
  }

  /** The plugin's implementation. */
  public interface Service {
    Response call(Request request) throws Exception;
  }

  private static void readEntry(CodedInputStream in, Map<String, String> into) throws IOException {
    int limit = in.pushLimit(in.readRawVarint32());
    String key = "";
    String value = "";
    for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
      if (tag == 10) key = in.readStringRequireUtf8();
      else if (tag == 18) value = in.readStringRequireUtf8();
      else in.skipField(tag);
    }
    in.popLimit(limit);
    into.put(key, value);
  }

  private static void writeMap(CodedOutputStream out, int field, Map<String, String> map)
      throws IOException {
    for (Map.Entry<String, String> e : map.entrySet()) {
      out.writeTag(field, WireFormat.WIRETYPE_LENGTH_DELIMITED);
      out.writeUInt32NoTag(
          CodedOutputStream.computeStringSize(1, e.getKey())
              + CodedOutputStream.computeStringSize(2, e.getValue()));
      out.writeString(1, e.getKey());
      out.writeString(2, e.getValue());
    }
  }

  static final MethodDescriptor.Marshaller<Request> REQUEST =
      new MethodDescriptor.Marshaller<Request>() {
        @Override
        public InputStream stream(Request r) {
          try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            CodedOutputStream out = CodedOutputStream.newInstance(bytes);
            writeMap(out, 1, r.header);
            writeMap(out, 2, r.trailer);
            if (r.body.length > 0) out.writeByteArray(3, r.body);
            if (!r.type.isEmpty()) out.writeString(4, r.type);
            out.flush();
            return new ByteArrayInputStream(bytes.toByteArray());
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }

        @Override
        public Request parse(InputStream stream) {
          try {
            CodedInputStream in = CodedInputStream.newInstance(stream);
            Request r = new Request();
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
              switch (tag) {
                case 10: readEntry(in, r.header); break;
                case 18: readEntry(in, r.trailer); break;
                case 26: r.body = in.readByteArray(); break;
                case 34: r.type = in.readStringRequireUtf8(); break;
                default: in.skipField(tag);
              }
            }
            return r;
          } catch (IOException e) {
            throw Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException();
          }
        }
      };

  static final MethodDescriptor.Marshaller<Response> RESPONSE =
      new MethodDescriptor.Marshaller<Response>() {
        @Override
        public InputStream stream(Response r) {
          try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            CodedOutputStream out = CodedOutputStream.newInstance(bytes);
            writeMap(out, 1, r.header);
            writeMap(out, 2, r.trailer);
            if (r.body.length > 0) out.writeByteArray(3, r.body);
            if (r.status != 0) out.writeInt32(4, r.status);
            out.flush();
            return new ByteArrayInputStream(bytes.toByteArray());
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }

        @Override
        public Response parse(InputStream stream) {
          try {
            CodedInputStream in = CodedInputStream.newInstance(stream);
            Response r = new Response();
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
              switch (tag) {
                case 10: readEntry(in, r.header); break;
                case 18: readEntry(in, r.trailer); break;
                case 26: r.body = in.readByteArray(); break;
                case 32: r.status = in.readInt32(); break;
                default: in.skipField(tag);
              }
            }
            return r;
          } catch (IOException e) {
            throw Status.INTERNAL.withDescription(e.getMessage()).asRuntimeException();
          }
        }
      };

  /** proto.Plugin/Call. */
  public static final MethodDescriptor<Request, Response> CALL =
      MethodDescriptor.<Request, Response>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName("proto.Plugin", "Call"))
          .setRequestMarshaller(REQUEST)
          .setResponseMarshaller(RESPONSE)
          .build();

  /** Serves the plugin until the host goes away. */
  public static void serve(Service service) throws Exception {
    if (!"ON".equals(System.getenv("MOSN_PLUGIN"))) {
      System.err.println(
          "This program is a Mosaic/MOSN plugin: the proxy starts it, not a person"
              + " (MOSN_PLUGIN=ON is not set).");
      System.exit(1);
    }
    ServerServiceDefinition definition =
        ServerServiceDefinition.builder("proto.Plugin")
            .addMethod(
                CALL,
                ServerCalls.asyncUnaryCall(
                    (request, observer) -> {
                      try {
                        observer.onNext(service.call(request));
                        observer.onCompleted();
                      } catch (Exception e) {
                        observer.onError(
                            Status.UNKNOWN.withDescription(String.valueOf(e.getMessage()))
                                .asRuntimeException());
                      }
                    }))
            .build();
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(definition)
            .build()
            .start();
    // The host pipes stdin: its end means the host is gone. Only a pipe counts: a
    // go-plugin host (MOSN) may hand us its own stdin, which can be /dev/null.
    if (stdinIsPipe()) watchStdin();
    System.out.println("1|1|tcp|127.0.0.1:" + server.getPort() + "|grpc");
    System.out.flush();
    server.awaitTermination();
  }

  private static boolean stdinIsPipe() {
    try {
      String target = Files.readSymbolicLink(Path.of("/proc/self/fd/0")).toString();
      return target.startsWith("pipe:") || target.startsWith("socket:");
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }

  private static void watchStdin() {
    Thread watcher =
        new Thread(
            () -> {
              try {
                byte[] buf = new byte[4096];
                while (System.in.read(buf) != -1) {}
              } catch (IOException e) {
                // stdin broke: the host is gone too.
              }
              System.exit(0);
            });
    watcher.setDaemon(true);
    watcher.start();
  }
}
