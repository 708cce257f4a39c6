#!/bin/sh
exec kafka-run-class.sh kafka.Kafka "$@"
