# rabbitmq:3.13-management as docker-compose.yml uses it: RABBITMQ_DEFAULT_USER and
# RABBITMQ_DEFAULT_PASS on a new node, the management plugin, rabbitmq-diagnostics.
FROM rewix-ci/base:bookworm
RUN apt-get install -y -qq rabbitmq-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && rabbitmq-plugins enable --offline rabbitmq_management >/dev/null
COPY rabbitmq-entrypoint.sh /usr/local/bin/rabbitmq-entrypoint.sh
EXPOSE 5672 15672
ENTRYPOINT ["/usr/local/bin/rabbitmq-entrypoint.sh"]
CMD ["rabbitmq-server"]
