//go:build !linux

package sshforward

import (
	"context"
	"errors"
)

type agentProcess struct{ sock string }

func startAgent(ctx context.Context, sock string, keys []string) (*agentProcess, error) {
	return nil, errors.ErrUnsupported
}

func (ap *agentProcess) stop() error { return errors.ErrUnsupported }
