# python:3.11-slim as the Dockerfile uses it: `python` and `pip` first on PATH,
# console scripts installed by pip on PATH too, `useradd` available.
FROM rewix-ci/base:bookworm
RUN apt-get install -y -qq python3 python3-venv passwd >/dev/null \
 && python3 -m venv /opt/python \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
