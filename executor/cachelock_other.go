//go:build !linux

package executor

import (
	"context"
	"errors"
)

func lockDir(ctx context.Context, dir string) (func(), error) { return nil, errors.ErrUnsupported }
