ARG TAG=latest
ARG IMAGE
FROM ${IMAGE:-busybox}:${TAG} AS Base
MAINTAINER someone
ENV GREETING hello
ARG API_TOKEN
WORKDIR app
COPY app.txt $DEST/
EXPOSE 8080:80 443/TCP
CMD ["sh"]
CMD echo $GREETING

# Not needed by the target: checked by --check only, but for the rules
# on the Dockerfile itself.
FROM other${SUFFIX} AS unused
COPY secret.txt /
RUN echo a \

  b
run true

FROM --platform=$TARGETPLATFORM base AS final
HEALTHCHECK NONE
