FROM busybox
RUN <<EOF
echo one
echo two
EOF
RUN <<A cat > /a && <<B cat > /b
first
A
second
B
COPY <<EOF /etc/conf
key=value
EOF
RUN <<-EOT sh
	#!/bin/sh
	echo tabs stripped
	EOT
