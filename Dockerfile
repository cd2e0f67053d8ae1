# authserver container image: a static binary on distroless, running as the
# unprivileged "nonroot" user (uid 65532).
#
#   docker build -t authserver --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
#
# The image reads its config from /etc/authserver/authserver.yaml (mount it;
# see deploy/authserver.yaml) and every scalar key can be overridden with
# AUTHSERVER_* environment variables. For a try-out without any config,
#   docker run --rm -p 127.0.0.1:8443:8443 authserver dev --listen :8443
# runs the zero-config demo (self-signed certificate, well-known API key).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/authserver ./cmd/authserver \
 && mkdir -p /out/var/lib/authserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/authserver /authserver
# The working directory is writable by nonroot: the embedded sequence store
# (data_dir ./data, used when database_url is empty) and `authserver dev`
# keep their files under it. Mount a volume here to keep them.
COPY --from=build --chown=65532:65532 /out/var/lib/authserver /var/lib/authserver
WORKDIR /var/lib/authserver
ENV AUTHSERVER_CONFIG=/etc/authserver/authserver.yaml
USER nonroot:nonroot
# 8443: public HTTPS API (listen). 9090: admin HTTP, /metrics /healthz /readyz
# (admin_listen; its default 127.0.0.1:9090 is reachable only inside the
# container: set admin_listen: ":9090" for Prometheus to scrape it).
EXPOSE 8443 9090
# healthcheck asks http://127.0.0.1:9090/readyz from inside the container
# (no curl in the image). Its --timeout is 3s, below Docker's 5s.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/authserver", "healthcheck"]
ENTRYPOINT ["/authserver"]
CMD ["serve"]
