//go:build !linux

package main

import (
	"errors"
	"os"
)

func makeRaw(f *os.File) (restore func(), err error) { return nil, errors.ErrUnsupported }

func proxiedSignals() []os.Signal { return []os.Signal{os.Interrupt} }

func stopSignal(s os.Signal) bool { return true }
