# postgres:15 as docker-compose.yml uses it: POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB on a new data directory at /var/lib/postgresql/data, pg_isready,
# pg_dump, psql and the other client tools on PATH, local connections trusted.
FROM rewix-ci/base:bookworm
# The data directory is made by the entry point, not by the package: no default cluster.
RUN apt-get install -y -qq postgresql-common >/dev/null \
 && sed -i 's/^#* *create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y -qq postgresql-15 >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
