#!/bin/sh
# Starts the Java hello plugin (built by ../setup.sh java); exec, so signals reach the JVM.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../plugin_filter/plugin_env.sh"
exec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
  -cp "$HERE/../build/java:$(java_classpath)" Hello "$@"
