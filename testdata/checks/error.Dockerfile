# check=error=true
FROM busybox
RUN echo ran
CMD echo hi
