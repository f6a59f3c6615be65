#!/bin/sh
# The default user of a new node from the environment, as the official image does.
set -eu
{
    echo "loopback_users = none"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    echo "default_user = ${RABBITMQ_DEFAULT_USER:-guest}"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}"
} > /etc/rabbitmq/rabbitmq.conf
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
exec "$@"
