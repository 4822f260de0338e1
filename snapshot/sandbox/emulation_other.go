//go:build !linux

package sandbox

import "errors"

func canEmulate(arch string, a elfArch) (Emulation, error) { return Emulation{}, errors.ErrUnsupported }
