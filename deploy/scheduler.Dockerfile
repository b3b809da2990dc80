# syntax=docker/dockerfile:1
# The Ork scheduler service. Build context: the repository root.
#   docker build -f deploy/scheduler.Dockerfile -t ork-scheduler .

FROM golang:1.26 AS build
WORKDIR /src
# The whole workspace: go.work names every module, and the services require their siblings.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd services/scheduler && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ork-scheduler ./cmd

# Static binary: no libc, no shell, runs as the image's non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ork-scheduler /usr/local/bin/ork-scheduler
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/ork-scheduler"]
