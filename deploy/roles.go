package deploy

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ork-go/ork/pkg/bus"
)

// NATSServerConf is nats-server.conf: the shipped server configuration, with one user per role.
//
//go:embed nats-server.conf
var NATSServerConf string

// The users of nats-server.conf, one per role (docs/security.md).
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

// ServerConfig is the shipped configuration with the passwords defined in it (the variables it
// reads), for a server that loads it from a string instead of an environment.
func (s Secrets) ServerConfig() string {
	var b strings.Builder
	for _, r := range Roles {
		fmt.Fprintf(&b, "%s: %q\n", PasswordEnv(r), s[r])
	}
	return b.String() + NATSServerConf
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
