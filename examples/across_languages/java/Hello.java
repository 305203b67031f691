import java.nio.charset.StandardCharsets;

/** {@code hello} to {@code hello java}; any other body goes on unchanged (status 0). */
public final class Hello {
  private Hello() {}

  public static void main(String[] args) throws Exception {
    byte[] hello = "hello".getBytes(StandardCharsets.UTF_8);
    MosnPlugin.serve(
        request -> {
          if (!java.util.Arrays.equals(request.body, hello)) {
            return new MosnPlugin.Response().status(0);
          }
          MosnPlugin.Response response = new MosnPlugin.Response().status(200);
          response.header.put("content-type", "text/plain");
          response.body = "hello java".getBytes(StandardCharsets.UTF_8);
          return response;
        });
  }
}
