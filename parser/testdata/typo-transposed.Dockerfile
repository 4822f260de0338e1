FROM busybox
RNU true
