# The root of every stand-in: a minimal bookworm (debootstrap, imported by
# scripts/compose-check) that trusts the same local CA certificates as the host.
FROM rewix-ci/rootfs:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# Packages do not start their services while an image is built.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
COPY local-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null \
 && printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > /etc/apt/apt.conf.d/90no-recommends \
 && apt-get update -qq
