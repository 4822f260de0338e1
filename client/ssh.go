package client

import (
	"context"
	"fmt"

	"github.com/builderdev/builder/sshforward"
)

// SSHSpec is one --ssh value: an agent socket or key files by id.
type SSHSpec = sshforward.Spec

// ParseSSHSpec reads an --ssh value ("default", "ID=PATH[,PATH]"); with no
// paths the caller fills in $SSH_AUTH_SOCK.
func ParseSSHSpec(s string) (SSHSpec, error) {
	sp, err := sshforward.ParseSpec(s)
	if err != nil {
		return sp, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return sp, nil
}

// openSSH opens the agents of a build in a work dir of the store (nil when
// there are none); Close stops the agents it started.
func (c *Client) openSSH(ctx context.Context, specs []SSHSpec) (*sshforward.Agents, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	dir, err := c.images.TempDir("ssh-")
	if err != nil {
		return nil, err
	}
	return sshforward.Open(ctx, specs, dir)
}
