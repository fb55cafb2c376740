# redis-server from this machine (Debian's package) with the shared
# libraries ldd lists, in an empty image. Like the official image it runs
# 'redis-server ARGS...' as its command and keeps data in /data.
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 data/ /data/
ENV PATH=/usr/local/bin
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
