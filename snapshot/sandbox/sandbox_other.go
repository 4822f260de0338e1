//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"os"
)

// runChild cannot happen off Linux: run never starts a child there.
func runChild() { os.Exit(127) }

func run(ctx context.Context, cfg Config) error { return errors.ErrUnsupported }

func checkLimits(l Limits) error { return errors.ErrUnsupported }
