# syntax=docker/dockerfile:1
# The ork CLI: compose's one-shot `migrate` service (`ork migrate up --db ...`) and the `ork` tool
# service (`docker compose run --rm ork run /opt/ork/examples/<flow>.yaml`). Build context: the
# repository root.
#   docker build -f deploy/ork.Dockerfile -t ork .

FROM golang:1.26 AS build
WORKDIR /src
# The whole workspace: go.work names every module, and the CLI requires all of them.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd cmd/ork && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ork .

# Static binary (the SQLite driver is pure Go), run as the image's non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ork /usr/local/bin/ork
USER nonroot:nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/ork"]
