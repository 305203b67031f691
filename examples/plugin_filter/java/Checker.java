import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The header checker plugin in Java: {@code -c config.json} names the required headers
 * (name to value); a request missing one, or with another value, gets status -1 (deny).
 */
public final class Checker {
  private Checker() {}

  /** Reads a flat JSON object of strings (all the config needs; no JSON library in Debian's JDK). */
  static Map<String, String> readFlatJson(String text) {
    Map<String, String> out = new LinkedHashMap<>();
    Matcher m = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(text);
    while (m.find()) out.put(m.group(1).toLowerCase(Locale.ROOT), m.group(2));
    return out;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 2 || !args[0].equals("-c")) {
      System.err.println("usage: Checker -c <config.json>");
      System.exit(2);
    }
    Map<String, String> required = readFlatJson(Files.readString(Path.of(args[1])));
    MosnPlugin.serve(
        request -> {
          for (Map.Entry<String, String> e : required.entrySet()) {
            if (!e.getValue().equals(request.header.get(e.getKey()))) {
              return new MosnPlugin.Response().status(-1);
            }
          }
          return new MosnPlugin.Response().status(0);
        });
  }
}
