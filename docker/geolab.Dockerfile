# geolab: the one binary (gateway, federation, toxiproxy, ...) in an empty
# image. Built by docker/build-images.sh from a static binary (CGO_ENABLED=0):
# no base image, no registry.
FROM scratch
COPY rootfs/ /
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/geolab"]
CMD ["--help"]
