#!/bin/sh
exec kafka-run-class.sh org.apache.kafka.tools.AclCommand "$@"
