FROM busybox
EXPOSE 80 443/tcp 53/udp
USER www:www
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=3 CMD wget -q localhost
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT exec app
ONBUILD COPY . /src
