package processes

import "github.com/ork-go/ork/deploy"

// The roles and their secrets have one home, the deploy package, next to nats-server.conf; these
// are its names where the process stack's users look for them.
const (
	RoleOperator  = deploy.RoleOperator
	RoleScheduler = deploy.RoleScheduler
	RoleRecorder  = deploy.RoleRecorder
	RoleExecutor  = deploy.RoleExecutor
	RoleSubmitter = deploy.RoleSubmitter
)

// Roles lists every role of the shipped configuration.
var Roles = deploy.Roles

// Secrets are the passwords of the roles (deploy.Secrets).
type Secrets = deploy.Secrets

// NewSecrets returns a fresh random password for every role.
func NewSecrets() Secrets { return deploy.NewSecrets() }

// PasswordEnv is the server's variable holding role's password.
func PasswordEnv(role string) string { return deploy.PasswordEnv(role) }

// InboxPrefix is the reply-inbox prefix the shipped configuration lets role subscribe to.
func InboxPrefix(role string) string { return deploy.InboxPrefix(role) }
