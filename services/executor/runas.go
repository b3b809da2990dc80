package executor

import (
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// runAs is the user task processes run as (Config.RunAs), resolved once when the service starts.
// Only the task's process changes user: the executor keeps its own, and with it the NATS
// credentials, the python runner's private cache and the pipes of every task.
type runAs struct {
	spec string // as configured, for messages
	cred syscall.Credential
	home string // the user's home directory, the task's HOME; "" when unknown
}

// resolveRunAs looks spec up: a user name, a numeric uid, or uid:gid. A user found in the user
// database runs with its primary group and its supplementary groups; a bare uid:gid with no groups.
// euid is the executor's effective user: switching to another user needs it to be root.
func resolveRunAs(spec string, euid int) (*runAs, error) {
	if spec == "" {
		return nil, nil
	}
	r := &runAs{spec: spec}
	name, group, hasGroup := strings.Cut(spec, ":")
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.ParseUint(name, 10, 32); numErr != nil {
			return nil, fmt.Errorf("executor: RunAs %q: no such user on this machine", spec)
		}
		if u, err = user.LookupId(name); err != nil && !hasGroup {
			return nil, fmt.Errorf("executor: RunAs %q: uid %s is not in the user database; give its group as well (%s:GID)", spec, name, name)
		}
	}
	var uid, gid uint64
	if u != nil {
		uid, _ = strconv.ParseUint(u.Uid, 10, 32)
		gid, _ = strconv.ParseUint(u.Gid, 10, 32)
		r.home = u.HomeDir
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil {
					r.cred.Groups = append(r.cred.Groups, uint32(g))
				}
			}
		}
	} else {
		uid, _ = strconv.ParseUint(name, 10, 32)
	}
	if hasGroup {
		if gid, err = strconv.ParseUint(group, 10, 32); err != nil {
			if g, lerr := user.LookupGroup(group); lerr == nil {
				gid, _ = strconv.ParseUint(g.Gid, 10, 32)
			} else {
				return nil, fmt.Errorf("executor: RunAs %q: no such group %q on this machine", spec, group)
			}
		}
		r.cred.Groups = nil // an explicit group is the only one
	}
	r.cred.Uid, r.cred.Gid = uint32(uid), uint32(gid)
	if len(r.cred.Groups) == 0 {
		r.cred.Groups = []uint32{r.cred.Gid}
	}
	if int(uid) == euid && !hasGroup {
		return nil, nil // the executor's own user: nothing to switch
	}
	if euid != 0 {
		return nil, fmt.Errorf("executor: RunAs %q: running tasks as another user needs the executor to run as root (it runs as uid %d)", spec, euid)
	}
	return r, nil
}

// credential is what a cold child is started with: nil when tasks run as the executor's user.
func (r *runAs) credential() *syscall.Credential {
	if r == nil {
		return nil
	}
	c := r.cred
	c.Groups = append([]uint32(nil), r.cred.Groups...)
	return &c
}

// zygoteUser is the user a zygote child switches to before the task's code runs, nil for none.
func (r *runAs) zygoteUser() *zygoteUser {
	if r == nil {
		return nil
	}
	return &zygoteUser{UID: r.cred.Uid, GID: r.cred.Gid, Groups: r.cred.Groups}
}

// env rewrites a task environment for the user: HOME is the user's own.
func (r *runAs) env(env []string) []string {
	if r == nil {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	if r.home != "" {
		out = append(out, "HOME="+r.home)
	}
	return out
}

// permissionHint adds, to a failure, that the task ran as another user, when what it printed last
// says it was refused a file.
func (r *runAs) permissionHint(lastErr string) string {
	if r == nil || !strings.Contains(strings.ToLower(lastErr), "permission denied") {
		return ""
	}
	return fmt.Sprintf(" (the task runs as %s (uid %d, --run-as): its program, the workflow's folder and its files must be readable by that user)", r.spec, r.cred.Uid)
}
