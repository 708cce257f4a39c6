#!/bin/sh
# Starts Neo4j Community. Its configuration is written to the scratch /tmp (the root may be
# read-only): listen on every address, data in /data, logs in /logs, then every NEO4J_<name>
# variable as a setting the way the upstream image maps them (`_` → `.`, `__` → `_`, e.g.
# NEO4J_server_memory_heap_max__size → server.memory.heap.max_size). On a new /data the
# initial password of user neo4j comes from NEO4J_AUTH_FILE ("neo4j/<password>"), handed to
# neo4j-admin in an argument file (never on a command line).
set -eu
conf=/tmp/neo4j-conf
mkdir -p "$conf" /tmp/neo4j-run
{
  echo "server.default_listen_address=0.0.0.0"
  echo "server.directories.data=/data"
  echo "server.directories.logs=/logs"
  echo "server.directories.run=/tmp/neo4j-run"
  echo "server.directories.import=/tmp/neo4j-import"
  echo "server.logs.user.config=/opt/neo4j/conf/user-logs.xml"
  echo "server.memory.pagecache.size=${NEO4J_server_memory_pagecache_size:-256m}"
  env | while IFS='=' read -r key value; do
    case "$key" in
      NEO4J_AUTH*|NEO4J_HOME|NEO4J_CONF|NEO4J_server_memory_pagecache_size) ;;
      NEO4J_*)
        name="$(printf '%s' "${key#NEO4J_}" | sed -e 's/__/%U%/g' -e 's/_/./g' -e 's/%U%/_/g')"
        printf '%s=%s\n' "$name" "$value" ;;
    esac
  done
} > "$conf/neo4j.conf"
export NEO4J_CONF="$conf"
cp="/opt/neo4j/lib/*"
if [ ! -f /data/dbms/auth.ini ] && [ -n "${NEO4J_AUTH_FILE:-}" ]; then
  auth="$(cat "$NEO4J_AUTH_FILE")"
  case "$auth" in
    neo4j/?*) ;;
    *) echo "neo4j-entrypoint: NEO4J_AUTH_FILE must hold neo4j/<password>" >&2; exit 1 ;;
  esac
  umask 077
  printf '%s\n' dbms set-initial-password "${auth#neo4j/}" > /tmp/neo4j-auth.args
  java -Xmx128m -cp "$cp" org.neo4j.cli.AdminTool @/tmp/neo4j-auth.args >/dev/null
  rm -f /tmp/neo4j-auth.args
  umask 022
  echo "neo4j-entrypoint: initial password set"
fi
exec java "-Xmx${NEO4J_server_memory_heap_max__size:-512m}" -XX:+UseG1GC \
  -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow -Djdk.nio.maxCachedBufferSize=1024 \
  -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
  -cp "$cp" org.neo4j.server.CommunityEntryPoint --home-dir=/opt/neo4j --config-dir="$conf"
