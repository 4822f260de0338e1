package executor

import (
	"errors"
	"fmt"
	"sync"

	"github.com/builderdev/builder/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// sshMount shows an agent of --ssh at target as a socket that forwards to
// it (package sshforward), with the requested mode and owner (default 0600
// root). As in BuildKit: the id defaults to "default"; the first ssh mount
// of a RUN sets SSH_AUTH_SOCK unless the environment has it; a missing id
// is an error only with required=true, else the RUN runs without the
// socket; the key counts the mount's shape, never the agent.
func (bd *build) sshMount(m *instructions.Mount, target string, setEnv bool) (runMount, error) {
	if m.Source != "" {
		return runMount{}, errors.New("--mount type=ssh does not support source")
	}
	id := m.CacheID
	if id == "" {
		id = "default"
	}
	perm, uid, gid := fileOpts(m, 0o600)
	rm := runMount{key: mountKey{Type: "ssh", Target: target, ID: id, UID: uid, GID: gid, Mode: uint32(perm)}}
	if setEnv {
		rm.env = "SSH_AUTH_SOCK=" + target
	}
	if bd.opts.SSH == nil || !bd.opts.SSH.Has(id) {
		if m.Required {
			return runMount{}, fmt.Errorf("ssh agent %q is required: pass it with --ssh %s (--ssh default forwards $SSH_AUTH_SOCK)", id, id)
		}
		return rm, nil // no socket, as BuildKit skips an optional one
	}
	var mu sync.Mutex
	var stop func() error
	rm.mount = func(tmp string) (snapshot.Mount, error) {
		p, s, err := bd.opts.SSH.Listen(id, tmp, uid, gid, perm)
		if err != nil {
			return snapshot.Mount{}, err
		}
		mu.Lock()
		stop = s
		mu.Unlock()
		return snapshot.Mount{Type: "bind", Source: p, Target: target, Options: []string{"bind"}}, nil
	}
	rm.release = func() {
		mu.Lock()
		defer mu.Unlock()
		if stop != nil {
			_ = stop()
		}
	}
	return rm, nil
}
