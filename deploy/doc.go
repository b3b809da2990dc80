// Package deploy holds Ork's deployment files: the Dockerfiles (build context = the repository
// root), the NATS server configuration, docker-compose.yml's tests and the dev stack script. Its Go code
// is in three packages: processes runs the services as separate processes (the dev stack's tests,
// the fault tests and the cluster benchmark use it), faults holds the fault tests and the one
// invariant check, and benchcluster measures a multi-process stack (`make bench-cluster`).
package deploy
