# syntax=docker/dockerfile:1
# The Ork executor service. Build context: the repository root.
#   docker build -f deploy/executor.Dockerfile -t ork-executor .

FROM golang:1.26 AS build
WORKDIR /src
# The whole workspace: go.work names every module, and the services require their siblings.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd services/executor && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ork-executor ./cmd

# Tasks are python functions and plain programs, so the runtime has python3 and a usual userland.
FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 ork \
 && useradd --system --uid 10001 --gid ork --home-dir /home/ork --create-home --shell /usr/sbin/nologin ork
COPY --from=build /out/ork-executor /usr/local/bin/ork-executor
USER ork:ork
WORKDIR /home/ork
ENTRYPOINT ["/usr/local/bin/ork-executor"]
