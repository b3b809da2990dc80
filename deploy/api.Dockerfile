# syntax=docker/dockerfile:1
# The Ork HTTP API (ork-api). Build context: the repository root.
#   docker build -f deploy/api.Dockerfile -t ork-api .

FROM golang:1.26 AS build
WORKDIR /src
# The whole workspace: go.work names every module, and the services require their siblings.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd services/api && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ork-api ./cmd

# Static binary: no libc, no shell, runs as the image's non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ork-api /usr/local/bin/ork-api
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/ork-api"]
