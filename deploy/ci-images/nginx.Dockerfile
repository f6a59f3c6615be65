# nginx as docker-compose.yml's proxy profile uses it: /etc/nginx/conf.d/*.conf,
# logs to the container's output, in the foreground.
FROM rewix-ci/base:bookworm
RUN apt-get install -y -qq nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80 443
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
