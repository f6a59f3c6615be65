# prom/alertmanager as docker-compose.yml's monitoring profile uses it.
FROM rewix-ci/base:bookworm
RUN apt-get install -y -qq prometheus-alertmanager wget >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/prometheus-alertmanager /usr/local/bin/alertmanager \
 && mkdir -p /alertmanager && chown nobody:nogroup /alertmanager
USER nobody
EXPOSE 9093
ENTRYPOINT ["/usr/local/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
