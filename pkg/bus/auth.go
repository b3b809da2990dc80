package bus

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ork-go/ork/pkg/envflag"
)

// Auth is how a client proves who it is to the NATS server and how it checks the server: any of
// user and password, a token, an NKey seed file or a credentials (.creds, JWT) file, and TLS with
// a CA and, for mutual TLS, a client certificate and key. The zero value connects anonymously,
// in plain text. docs/security.md says which role needs which subjects.
type Auth struct {
	User     string
	Password string
	Token    string
	// NKeyFile is a file holding an NKey seed (SU...).
	NKeyFile string
	// CredsFile is a .creds file: a user JWT and its NKey seed (decentralized, operator-mode auth).
	CredsFile string
	// TLSCA verifies the server's certificate (default: the system roots, when TLS is on).
	TLSCA string
	// TLSCert and TLSKey are the client certificate for mutual TLS; both or neither.
	TLSCert string
	TLSKey  string
	// InboxPrefix replaces "_INBOX" in the subjects replies come back on. Give each role its own
	// (the shipped configuration allows each role to subscribe only to its own) so that one role
	// cannot read the replies meant for another, such as the dispatches pulled by an executor.
	InboxPrefix string
}

// Environment variables read by RegisterAuthFlags.
const (
	EnvUser        = "ORK_NATS_USER"
	EnvPassword    = "ORK_NATS_PASSWORD"
	EnvToken       = "ORK_NATS_TOKEN"
	EnvNKeyFile    = "ORK_NATS_NKEY"
	EnvCredsFile   = "ORK_NATS_CREDS"
	EnvTLSCA       = "ORK_NATS_TLS_CA"
	EnvTLSCert     = "ORK_NATS_TLS_CERT"
	EnvTLSKey      = "ORK_NATS_TLS_KEY"
	EnvInboxPrefix = "ORK_NATS_INBOX_PREFIX"
	// EnvProvision=false starts a service without provisioning the streams (servicecmd's
	// --provision): it only checks they exist.
	EnvProvision = "ORK_NATS_PROVISION"
)

// RegisterAuthFlags defines the connection's credential and TLS flags on s (--nats-user,
// --nats-password, --nats-token, --nats-nkey, --nats-creds, --nats-tls-ca, --nats-tls-cert,
// --nats-tls-key, --nats-inbox-prefix), each defaulting to its ORK_NATS_* variable. The CLI and
// every service register the same ones. Prefer the variables for secrets: a flag's value is
// visible to every user of the host in the process list.
func (a *Auth) RegisterAuthFlags(s *envflag.Set) {
	s.StringVar(&a.User, "nats-user", EnvUser, a.User, "NATS user name (with --nats-password)")
	s.StringVar(&a.Password, "nats-password", EnvPassword, a.Password, "NATS password; prefer the variable")
	s.StringVar(&a.Token, "nats-token", EnvToken, a.Token, "NATS authentication token; prefer the variable")
	s.StringVar(&a.NKeyFile, "nats-nkey", EnvNKeyFile, a.NKeyFile, "file holding a NATS NKey seed")
	s.StringVar(&a.CredsFile, "nats-creds", EnvCredsFile, a.CredsFile, "NATS credentials file (.creds: user JWT and seed)")
	s.StringVar(&a.TLSCA, "nats-tls-ca", EnvTLSCA, a.TLSCA, "CA certificate (PEM) that verifies the NATS server; turns TLS on")
	s.StringVar(&a.TLSCert, "nats-tls-cert", EnvTLSCert, a.TLSCert, "client certificate (PEM) for mutual TLS, with --nats-tls-key")
	s.StringVar(&a.TLSKey, "nats-tls-key", EnvTLSKey, a.TLSKey, "client key (PEM) for mutual TLS, with --nats-tls-cert")
	s.StringVar(&a.InboxPrefix, "nats-inbox-prefix", EnvInboxPrefix, a.InboxPrefix,
		"subject prefix of this client's reply inboxes (default _INBOX; the shipped roles use _INBOX_<role>)")
}

// Validate names the first contradiction or unreadable file.
func (a Auth) Validate() error {
	methods := 0
	for _, set := range []bool{a.User != "", a.Token != "", a.NKeyFile != "", a.CredsFile != ""} {
		if set {
			methods++
		}
	}
	switch {
	case methods > 1:
		return errors.New("nats: give one of user and password, token, NKey seed or credentials file, not several")
	case a.Password != "" && a.User == "":
		return errors.New("nats: a password needs a user (--nats-user or " + EnvUser + ")")
	case (a.TLSCert == "") != (a.TLSKey == ""):
		return errors.New("nats: a client certificate needs its key and a key its certificate (--nats-tls-cert and --nats-tls-key)")
	case a.InboxPrefix != "" && strings.ContainsAny(a.InboxPrefix, " \t.*>"):
		return fmt.Errorf("nats: inbox prefix %q must be one subject token (no dots, spaces or wildcards)", a.InboxPrefix)
	}
	for _, f := range []struct{ what, path string }{
		{"NKey seed file", a.NKeyFile}, {"credentials file", a.CredsFile},
		{"TLS CA", a.TLSCA}, {"TLS certificate", a.TLSCert}, {"TLS key", a.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("nats: %s: %w", f.what, err)
		}
	}
	return nil
}

// options returns the nats.go options of a.
func (a Auth) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	case a.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats: NKey seed file %s: %w", a.NKeyFile, err)
		}
		opts = append(opts, o)
	case a.CredsFile != "":
		opts = append(opts, nats.UserCredentials(a.CredsFile))
	}
	if a.TLSCA != "" {
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	if a.TLSCert != "" {
		opts = append(opts, nats.ClientCert(a.TLSCert, a.TLSKey))
	}
	if a.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.InboxPrefix))
	}
	return opts, nil
}

// any reports whether a asks for credentials.
func (a Auth) any() bool {
	return a.User != "" || a.Token != "" || a.NKeyFile != "" || a.CredsFile != ""
}

// connectError explains a failed connection: which server, and what to do about the reason.
func connectError(rawURL string, a Auth, err error) error {
	where := redactURL(rawURL)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		how := "no credentials were given: set " + EnvUser + " and " + EnvPassword + " (or " + EnvToken + ", " +
			EnvNKeyFile + ", " + EnvCredsFile + ") or the matching --nats-* flags"
		if a.any() || strings.Contains(rawURL, "@") {
			how = "the server refused the credentials given: check the user and password, token, NKey or creds file"
		}
		return fmt.Errorf("connecting to nats at %s: %w: %s", where, err, how)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Errorf("connecting to nats at %s: %w: use a tls:// URL or --nats-tls-ca", where, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("connecting to nats at %s: %w: is nats-server running and listening there?", where, err)
	}
	return fmt.Errorf("connecting to nats at %s: %w", where, err)
}

// redactURL hides the password or token of a URL in messages.
func redactURL(raw string) string {
	var out []string
	for _, one := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.User == nil {
			out = append(out, one)
			continue
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}
