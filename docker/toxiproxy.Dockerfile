# Toxiproxy 2.5.0's server, built from its Go module (the version go.mod
# requires) as a static binary. Same interface as the official image
# (ghcr.io/shopify/toxiproxy): entrypoint /toxiproxy, API on 8474, any
# argument is a toxiproxy-server flag (-host, -port, -config).
FROM scratch
COPY rootfs/ /
USER 65534:65534
EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]
