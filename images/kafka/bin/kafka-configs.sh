#!/bin/sh
exec kafka-run-class.sh kafka.admin.ConfigCommand "$@"
