FROM busybox
MAINTAINER someone
RUN echo a \

    b
