package processes

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/ork-go/ork/pkg/bus"
)

// The users of deploy/nats-server.conf, one per role (docs/security.md).
const (
	RoleOperator  = "operator"
	RoleScheduler = "scheduler"
	RoleRecorder  = "recorder"
	RoleExecutor  = "executor"
	RoleSubmitter = "submitter"
)

// Roles lists every role of the shipped configuration.
var Roles = []string{RoleOperator, RoleScheduler, RoleRecorder, RoleExecutor, RoleSubmitter}

// Secrets are the passwords of the roles, which the shipped configuration reads from the server's
// environment (ORK_NATS_<ROLE>_PASSWORD).
type Secrets map[string]string

// NewSecrets returns a fresh random password for every role.
func NewSecrets() Secrets {
	s := Secrets{}
	for _, r := range Roles {
		b := make([]byte, 18)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		s[r] = hex.EncodeToString(b)
	}
	return s
}

// PasswordEnv is the server's variable holding role's password.
func PasswordEnv(role string) string { return "ORK_NATS_" + strings.ToUpper(role) + "_PASSWORD" }

// ServerEnv is the environment nats-server needs to load the shipped configuration.
func (s Secrets) ServerEnv() []string {
	env := make([]string, 0, len(s))
	for _, r := range Roles {
		env = append(env, PasswordEnv(r)+"="+s[r])
	}
	return env
}

// Auth returns the client settings of role: its user, password and own inbox prefix.
func (s Secrets) Auth(role string) bus.Auth {
	return bus.Auth{User: role, Password: s[role], InboxPrefix: InboxPrefix(role)}
}

// InboxPrefix is the reply-inbox prefix the shipped configuration lets role subscribe to.
func InboxPrefix(role string) string { return "_INBOX_" + role }

// ClientEnv is the environment of a service or CLI connecting as role. The services are told not
// to provision: only the operator may create streams, and the stack provisions with it first.
func (s Secrets) ClientEnv(role string) []string {
	return []string{
		bus.EnvUser + "=" + role,
		bus.EnvPassword + "=" + s[role],
		bus.EnvInboxPrefix + "=" + InboxPrefix(role),
		bus.EnvProvision + "=false",
	}
}
