// Package deploy holds Ork's deployment files: the Dockerfiles (build context = the repository
// root), the NATS server configuration, docker-compose.yml's tests and the dev stack script. Its Go
// code lives in package stack, which runs the services as separate processes for the dev stack's
// tests and for fault tests.
package deploy
