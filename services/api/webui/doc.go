// Package webui serves Ork's web UI: the files `make ui` builds from ui/ into dist/, embedded in
// the binary. Every path that is not a file of the build answers index.html, so the UI's own
// routes (/runs/ID, /workflows/NAME, ...) load it too; a binary built before `make ui` answers a
// page that says so, and the API beside it works all the same.
package webui
