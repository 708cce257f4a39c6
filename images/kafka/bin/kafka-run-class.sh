#!/bin/sh
# kafka-run-class.sh CLASS [ARGS...]: a JVM with Kafka's libraries. KAFKA_HEAP_OPTS and
# KAFKA_OPTS as the release's launcher reads them. Arguments may come from a Java argument
# file (`@FILE`), which keeps secrets off the command line.
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+ExitOnOutOfMemoryError \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties ${KAFKA_OPTS:-} \
  -cp '/opt/kafka/libs/*' "$@"
