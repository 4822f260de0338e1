package executor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/parser"
)

// FuzzFrontEnd runs the Dockerfile front end (parse, global ARGs, stage
// plan, and the expansion of every instruction with ARG and ENV taking
// effect, under the expansion bounds) over arbitrary bytes: no panic, an
// error that names its line once parsing has worked, and no expansion
// that takes long.
func FuzzFrontEnd(f *testing.F) {
	f.Fuzz(func(t *testing.T, dockerfile []byte) {
		start := time.Now()
		err := frontEnd(dockerfile)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("front end took %v", d)
		}
		if errors.Is(err, parser.ErrExpansion) && !strings.HasPrefix(err.Error(), "Dockerfile:") {
			t.Errorf("expansion error names no line: %v", err)
		}
	})
}
