FROM busybox
RUN --network=none echo offline
RUN ["echo", "exec", "form"]
