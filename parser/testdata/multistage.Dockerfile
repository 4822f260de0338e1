ARG BASE=busybox
ARG TAG
FROM ${BASE}:${TAG:-latest} AS build
RUN make
FROM scratch AS final
COPY --from=build /out /out
COPY --from=0 --chown=1:2 --chmod=0755 /bin/x /x
