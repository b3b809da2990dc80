// Package api is Ork's HTTP API: JSON over net/http under /api/v1 (OpenAPI 3.1 at
// /api/v1/openapi.json), errors as RFC 9457 problem details, bearer tokens with scopes, and live
// run events as Server-Sent Events from JetStream.
//
// It holds no state of its own and never talks to the bus directly: workflows are registered and
// runs started, controlled and followed through pkg/client; runs, tasks and logs are read from the
// store the recorder writes. `ork serve` composes it in-process with the other services; cmd/ is
// the standalone ork-api binary.
package api
