FROM busybox:latest
ENV A=1 B="two words"
ENV C 3
LABEL x=y "with space"="v"
WORKDIR /app
COPY a b /app/
RUN echo hi
CMD ["sh"]
